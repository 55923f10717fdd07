"""The tracker interface the runner talks to; backends (W&B, local report) implement it.

A run calls ``start`` once, then any number of ``log_*`` calls, then ``finish`` exactly once
(from a ``finally``), whatever happened in between, so sweeps never share a W&B run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class RunInfo:
    """Who a run is, for naming and grouping on dashboards."""

    name: str
    run_dir: Path
    group: str = ""
    job_type: str = ""
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)  # resolved and redacted


@dataclass(frozen=True)
class Table:
    """A small table: column names and rows of plain values."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @classmethod
    def of(cls, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> "Table":
        return cls(tuple(columns), tuple(tuple(r) for r in rows))


@dataclass(frozen=True)
class ExampleImage:
    """An example pair drawn side by side (uint8 pixels) with a caption."""

    pixels: np.ndarray
    caption: str


class Tracker(ABC):
    """Receives a run's results as they are produced."""

    @abstractmethod
    def start(self, run: RunInfo) -> None:
        """Open the run (called once, before any logging)."""

    def log_condition(self, name: str, metrics: dict[str, Any]) -> None:
        """Metrics of one finished condition (``overall`` and ``shift``), as soon as known."""

    def log_tables(self, tables: dict[str, Table]) -> None:
        """Named tables (per condition, per category, per question)."""

    def log_examples(self, condition: str, examples: Sequence[ExampleImage],
                     same_pixels_as: str | None = None) -> None:
        """Example (perturbed) pairs of one condition; ``same_pixels_as`` names the condition
        whose pictures these would repeat (a text-only probe), and then ``examples`` is empty."""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """The final summary (``summary.json``'s content)."""

    @abstractmethod
    def finish(self, status: str = "ok") -> None:
        """Close the run; ``status`` is ``ok``, ``interrupted`` or ``failed``. Must not raise."""


class NullTracker(Tracker):
    """Tracks nothing (``logger=none``)."""

    def start(self, run: RunInfo) -> None:
        pass

    def finish(self, status: str = "ok") -> None:
        pass


class MultiTracker(Tracker):
    """Fans every call out to several trackers; ``finish`` reaches each even if one fails."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)

    def start(self, run: RunInfo) -> None:
        for t in self.trackers:
            t.start(run)

    def log_condition(self, name: str, metrics: dict[str, Any]) -> None:
        for t in self.trackers:
            t.log_condition(name, metrics)

    def log_tables(self, tables: dict[str, Table]) -> None:
        for t in self.trackers:
            t.log_tables(tables)

    def log_examples(self, condition: str, examples: Sequence[ExampleImage],
                     same_pixels_as: str | None = None) -> None:
        for t in self.trackers:
            t.log_examples(condition, examples, same_pixels_as)

    def log_summary(self, summary: dict[str, Any]) -> None:
        for t in self.trackers:
            t.log_summary(summary)

    def finish(self, status: str = "ok") -> None:
        for t in self.trackers:
            try:
                t.finish(status)
            except Exception:  # noqa: BLE001 - one backend failing must not leave others open
                import logging

                logging.getLogger(__name__).exception("tracker %s failed to finish",
                                                      type(t).__name__)
