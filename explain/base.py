"""The explainer interface: what the ``explain`` config group builds and the runner calls.

An explainer runs once, after every condition is answered. It gets an :class:`ExplainContext`
(the model itself, not the answer cache; the mode; the benchmark; the queries and answers) and
returns what goes to ``summary.json["saliency"]`` (an empty dict for nothing to report).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from robustness.data.query import Answer, Query
from robustness.data.types import Benchmark, Pair
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode
from robustness.tracking.base import Tracker

QueryKey = tuple[str, int]


@dataclass
class ExplainContext:
    """What an explainer gets after the conditions have run."""

    adapter: ModelAdapter  # the model itself, not the cache (gradients, option scores)
    mode: AnsweringMode
    benchmark: Benchmark
    clean_queries: Mapping[QueryKey, Query]
    answers: Mapping[str, Mapping[QueryKey, Answer]]  # per condition
    probe_queries: Callable[[str, Pair], Sequence[Query]]  # (condition name, pair) -> queries
    run_dir: Path
    tracker: Tracker
    seed: int
    progress: bool | None = None  # progress bars: None = only on a terminal
    cache_dir: Path | None = None  # where maps are cached (None: computed every time)
    scoring_adapter: ModelAdapter | None = None  # the model through the answer cache: margins


class Explainer(ABC):
    """Explains some of a run's answers after the run (saliency maps, reliance, grounding)."""

    @abstractmethod
    def explain_run(self, ctx: ExplainContext) -> dict[str, Any]:
        """Explain what ``ctx`` holds; the result is stored as ``summary.json["saliency"]``."""

    def plan(self, benchmark: Benchmark, adapter: ModelAdapter,
             mode: AnsweringMode) -> dict[str, Any] | None:
        """The work :meth:`explain_run` will do on ``benchmark`` (``robustness plan``)."""
        return None
