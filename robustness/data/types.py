"""Immutable benchmark types: a confusing pair and a benchmark of pairs. Pure data, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Literal, Mapping, Optional

OptionLabel = Literal["A", "B"]
Choice = Optional[OptionLabel]  # None means an invalid answer
OPTION_LABELS: tuple[OptionLabel, OptionLabel] = ("A", "B")

# Column order of the official per-category table (statistics.json order).
MEDICONFUSION_CATEGORIES: tuple[str, ...] = (
    "Cerebral",
    "Vascular",
    "Head and Neck",
    "Spinal",
    "Musculoskeletal",
    "Cardiac",
    "Gastrointestinal",
    "Pulmonary",
    "Nuclear Medicine",
)


def other_label(label: OptionLabel) -> OptionLabel:
    """The option label that is not ``label``."""
    return "B" if label == "A" else "A"


@dataclass(frozen=True)
class Pair:
    """Two images sharing one question and two options, with opposite correct answers."""

    pair_id: str
    question: str
    options: tuple[str, str]  # texts of option A and option B
    correct: tuple[OptionLabel, OptionLabel]  # correct label for image 1 and image 2
    categories: tuple[tuple[str, ...], tuple[str, ...]]  # categories of image 1 and image 2
    image_refs: tuple[str, str]  # ROCO-relative paths (``im_1``, ``im_2``)
    local_ids: tuple[str, str]  # local image ids (``im_1_local``, ``im_2_local``)
    captions: tuple[str, str] = ("", "")
    biomedclip_sim: float | None = None
    dino_sim: float | None = None
    ai_question: str = ""
    ai_options: tuple[str, str] = ("", "")
    images: tuple[Path, Path] | None = None  # resolved image files, when attached
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def option_text(self, label: OptionLabel) -> str:
        """Text of option ``label``."""
        return self.options[OPTION_LABELS.index(label)]

    def image_categories(self, image: int) -> tuple[str, ...]:
        """Categories of image 1 or 2."""
        return self.categories[image - 1]

    @property
    def pair_categories(self) -> tuple[str, ...]:
        """Categories of both images, duplicates kept (the official pair weighting)."""
        return self.categories[0] + self.categories[1]


@dataclass(frozen=True)
class Benchmark:
    """An ordered set of pairs plus where it came from (for provenance and the gate)."""

    name: str
    pairs: tuple[Pair, ...]
    source: Path | None = None  # the dataset.json it was read from
    content_hash: str = ""  # sha256 of the annotation bytes
    image_root: Path | None = None

    def __post_init__(self) -> None:
        ids = [p.pair_id for p in self.pairs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate pair ids in benchmark")
        object.__setattr__(self, "_index", {p.pair_id: p for p in self.pairs})

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def __contains__(self, pair_id: object) -> bool:
        return pair_id in self._index  # type: ignore[attr-defined]

    def pair(self, pair_id: str) -> Pair:
        """The pair with id ``pair_id`` (KeyError if absent)."""
        return self._index[pair_id]  # type: ignore[attr-defined]

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories present, official ones first in the official order, then first-seen order."""
        seen: dict[str, None] = {}
        for pair in self.pairs:
            for cat in pair.pair_categories:
                seen.setdefault(cat, None)
        official = [c for c in MEDICONFUSION_CATEGORIES if c in seen]
        return tuple(official + [c for c in seen if c not in MEDICONFUSION_CATEGORIES])

    @property
    def category_counts(self) -> dict[str, int]:
        """Per-category occurrence counts over ``category_1 + category_2`` (statistics.json)."""
        counts = {c: 0 for c in self.categories}
        for pair in self.pairs:
            for cat in pair.pair_categories:
                counts[cat] += 1
        return counts

    def subset(self, pair_ids: list[str] | tuple[str, ...]) -> "Benchmark":
        """A benchmark restricted to ``pair_ids`` (kept in this benchmark's order)."""
        wanted = set(pair_ids)
        return Benchmark(
            name=self.name,
            pairs=tuple(p for p in self.pairs if p.pair_id in wanted),
            source=self.source,
            content_hash=self.content_hash,
            image_root=self.image_root,
        )
