"""The probe interface: a named, seeded, pure transformation of a pair's two queries.

A probe never calls a model. It may expand into several conditions (e.g. one per severity);
each condition rewrites the clean queries of a pair and remaps the correct answers when it must.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from robustness.data.types import Benchmark, Pair
from robustness.modes.query import Query


def derive_seed(*parts: Any) -> int:
    """A stable 32-bit seed from any parts (probe name, pair id, image index, base seed)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class ProbeContext:
    """What probes may read besides the pair: the whole benchmark (few-shot pools) and a seed."""

    benchmark: Benchmark
    seed: int = 0
    load_queries: Any = None  # callable(pair) -> tuple[Query, Query] (clean queries of any pair)


@dataclass(frozen=True)
class Condition:
    """One concrete probe setting, e.g. ``gaussian_noise@3``; names are unique within a run."""

    name: str
    probe: str
    params: Mapping[str, Any] = field(default_factory=dict)


class Probe(ABC):
    """Base class of probes. Subclasses declare parameters as constructor arguments."""

    name: str = ""

    @abstractmethod
    def conditions(self) -> list[Condition]:
        """The conditions this probe contributes to a run."""

    @abstractmethod
    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        """Rewrite the clean ``queries`` of ``pair`` under ``condition``; must be deterministic."""
