"""A query is one image of a pair as shown to the model; an answer is what the mode made of it.

Probes transform queries (image pixels, option order, prompt strategy) and keep ``label_map``
so every choice maps back to the pair's original option labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from robustness.data.types import OPTION_LABELS, Choice, OptionLabel, Pair, other_label
from robustness.data.image import ImageInput


@dataclass(frozen=True)
class FewShotExample:
    """A worked example shown before the question (from another pair, never the one asked)."""

    image: ImageInput
    question: str
    options: tuple[str, str]
    answer: OptionLabel  # displayed label of the right option
    source_pair_id: str


@dataclass(frozen=True)
class Query:
    """One question to the model about one image."""

    pair_id: str
    image_index: int  # 1 or 2: which image of the pair
    image: ImageInput
    question: str
    options: tuple[str, str]  # texts in displayed order (displayed A, displayed B)
    label_map: tuple[OptionLabel, OptionLabel] = ("A", "B")  # displayed label -> original label
    correct: OptionLabel = "A"  # the right answer in *displayed* labels
    strategy: str = "direct"  # prompting strategy: direct, cot, few_shot, persona, ...
    system_prompt: str | None = None
    few_shot: tuple[FewShotExample, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def key(self) -> tuple[str, int]:
        return (self.pair_id, self.image_index)

    def to_original(self, displayed: Choice) -> Choice:
        """Map a displayed label back to the pair's original label (None stays None)."""
        if displayed is None:
            return None
        return self.label_map[OPTION_LABELS.index(displayed)]

    def with_meta(self, **items: Any) -> "Query":
        return replace(self, meta=MappingProxyType({**self.meta, **items}))


def clean_queries(pair: Pair, images: tuple[ImageInput, ImageInput]) -> tuple[Query, Query]:
    """The unperturbed queries for both images of ``pair``."""
    return tuple(  # type: ignore[return-value]
        Query(pair_id=pair.pair_id, image_index=i + 1, image=images[i], question=pair.question,
              options=pair.options, correct=pair.correct[i])
        for i in range(2)
    )


def swap_options(query: Query) -> Query:
    """``query`` with its two options in the opposite displayed order, truth remapped."""
    return replace(query, options=(query.options[1], query.options[0]),
                   label_map=(query.label_map[1], query.label_map[0]),
                   correct=other_label(query.correct))


@dataclass
class Answer:
    """A mode's answer to one query: the choice plus everything needed to audit it."""

    pair_id: str
    image_index: int
    choice: Choice  # in the pair's original labels
    displayed_choice: Choice  # the letter as the model saw the options
    raw: dict[str, Any] = field(default_factory=dict)  # text, letter probs, option scores, judge
    latency_s: float = 0.0
    error: str | None = None  # failure kind when the backend gave no usable output
    cached: bool = False

    def record(self) -> dict[str, Any]:
        """The JSON Lines record (``robustness score`` format plus audit fields)."""
        rec: dict[str, Any] = {"pair_id": self.pair_id, "image": self.image_index,
                               "choice": self.choice, "displayed_choice": self.displayed_choice,
                               "raw": self.raw, "latency_s": round(self.latency_s, 4)}
        if self.error:
            rec["error"] = self.error
        return rec
