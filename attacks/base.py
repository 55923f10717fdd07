"""The probe interface: a named, seeded, pure transformation of a pair's two queries.

A probe never calls a model. It may expand into several conditions (e.g. one per severity);
each condition rewrites the clean queries of a pair and remaps the correct answers when it must.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence, Union

from robustness.data.derived import DerivedDigests
from robustness.data.types import OPTION_LABELS, Benchmark, OptionLabel, Pair
from robustness.errors import ConfigError
from robustness.data.query import Answer, Query

QueryKey = tuple[str, int]  # (pair id, image slot 1 or 2): the record key of a query/answer
Answers = Union[Sequence[Answer], Mapping[QueryKey, Answer]]
Queries = Union[Sequence[Query], Mapping[QueryKey, Query]]


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
    derived: DerivedDigests | None = None  # digests of images derived in earlier runs


@dataclass(frozen=True)
class Condition:
    """One concrete probe setting, e.g. ``gaussian_noise@3``; names are unique within a run."""

    name: str
    probe: str
    params: Mapping[str, Any] = field(default_factory=dict)


class Probe(ABC):
    """Base class of probes. Subclasses declare parameters as constructor arguments.

    Every constructor accepts ``name`` (default: the class's ``name``) so one class can serve
    several configs (e.g. noise on image 1 only) with distinct condition names and seeds.
    """

    name: str = ""

    def _set_name(self, name: str | None) -> None:
        name = type(self).name if name is None else str(name)
        if not name or "@" in name or "/" in name:
            raise ConfigError(f"probe name {name!r} must be non-empty without '@' or '/'")
        self.name = name

    def check(self, benchmark: Benchmark) -> None:
        """Fail at configuration time if this probe cannot work on ``benchmark`` (e.g. it
        needs columns the benchmark does not have); the default accepts every benchmark."""

    def strategies(self) -> frozenset[str]:
        """Prompting strategies this probe's queries use (the runner checks the mode serves
        them before any work); empty means the run's base strategy is kept."""
        return frozenset()

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        """Probe-specific metrics for one condition (JSON-able), stored by the runner under
        ``conditions[NAME]["probe_metrics"]``. ``clean_answers`` / ``probe_answers`` /
        ``probe_queries`` are lists or mappings keyed by ``(pair_id, image_index)``."""
        return {}

    @abstractmethod
    def conditions(self) -> list[Condition]:
        """The conditions this probe contributes to a run."""

    @abstractmethod
    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        """Rewrite the clean ``queries`` of ``pair`` under ``condition``; must be deterministic."""


# ---------------------------------------------------------------- helpers shared by probes


def index_by_key(items: Iterable[Any] | Mapping[QueryKey, Any]) -> dict[QueryKey, Any]:
    """Answers or queries keyed by ``(pair_id, image_index)``, from a list or a mapping."""
    if isinstance(items, Mapping):
        return dict(items)
    return {(item.pair_id, item.image_index): item for item in items}


def displayed_label(query: Query, original: OptionLabel) -> OptionLabel:
    """The displayed letter under which ``query`` shows the pair's option ``original``."""
    return OPTION_LABELS[query.label_map.index(original)]


def truth(query: Query) -> OptionLabel:
    """The right answer of ``query`` in the pair's original labels."""
    return query.to_original(query.correct)  # type: ignore[return-value]


def source_image(query: Query) -> int:
    """Which original image of the pair ``query`` shows (pair probes move images between slots)."""
    return int(query.meta.get("source_image", query.image_index))


def scoring_pair(pair: Pair, queries: Sequence[Query]) -> Pair:
    """``pair`` with ``correct`` set to the truths the probed ``queries`` are scored against.

    Most probes keep the annotations; pair probes (swapped or duplicated images) change the
    truth of a slot. Score a condition with the pairs this returns (records carry the same
    truth as ``"correct"``). Categories stay the pair's, so per-category rows are comparable.
    """
    by_slot = {q.image_index: truth(q) for q in queries if q.pair_id == pair.pair_id}
    if set(by_slot) != {1, 2}:
        raise ValueError(f"pair {pair.pair_id}: expected queries for image slots 1 and 2")
    correct = (by_slot[1], by_slot[2])
    return pair if correct == pair.correct else replace(pair, correct=correct)


def success_rate(changed: Sequence[Query], clean_answers: Mapping[QueryKey, Answer],
                 probe_answers: Mapping[QueryKey, Answer]) -> float | None:
    """% of the ``changed`` images answered right on clean and wrong under the condition (an
    attack's success), over those answered right on clean."""
    right = [q for q in changed
             if clean_answers.get(q.key) is not None and clean_answers[q.key].choice == truth(q)]
    broken = sum(1 for q in right if probe_answers[q.key].choice != truth(q))
    return percent(broken, len(right))


def percent(numerator: float, denominator: float) -> float | None:
    """A percentage rounded to 2 decimals, None when there is nothing to divide by."""
    return round(100.0 * numerator / denominator, 2) if denominator else None
