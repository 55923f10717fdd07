"""Pair scoring faithful to the official MediConfusion code, on plain choices (no torch).

For each image a choice: "A", "B" or None (invalid). Overall and per-category metrics follow the
official weighting: a pair adds to every category in ``category_1 + category_2`` (duplicates
count twice); an image's own answer adds to its own categories for individual accuracy and
invalid rate; per-category denominators are the occurrence counts (``statistics.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

from robustness.data.types import Choice, Pair

ChoiceKey = tuple[str, int]  # (pair id, image 1 or 2)
ChoiceMap = Mapping[ChoiceKey, Choice]

METRIC_KEYS = ("set_accuracy", "individual_accuracy", "confusion", "invalid_rate", "precision",
               "valid_pairs")
RANDOM_GUESS = {"set_accuracy": 25.0, "individual_accuracy": 50.0, "confusion": 50.0}


def threshold_choice(score_a: float, score_b: float, threshold: float = 3) -> Choice:
    """The FF rule: A if A ≥ B + tr, B if B ≥ A + tr, else invalid (None)."""
    if score_a >= score_b + threshold:
        return "A"
    if score_b >= score_a + threshold:
        return "B"
    return None


@dataclass(frozen=True)
class PairOutcome:
    """What one pair's two choices mean for scoring."""

    correct: tuple[bool, bool]
    invalid: tuple[bool, bool]
    confused: bool

    @property
    def both_correct(self) -> bool:
        return self.correct[0] and self.correct[1]

    @property
    def valid(self) -> bool:
        return not (self.invalid[0] or self.invalid[1])


def pair_outcome(pair: Pair, choice_1: Choice, choice_2: Choice) -> PairOutcome:
    """Score one pair: correctness, validity and confusion (same valid option for both)."""
    return PairOutcome(
        correct=(choice_1 == pair.correct[0], choice_2 == pair.correct[1]),
        invalid=(choice_1 is None, choice_2 is None),
        confused=choice_1 is not None and choice_1 == choice_2,
    )


@dataclass
class Counts:
    """Raw tallies for one row of the table (a category or All)."""

    total: int = 0  # denominator: pairs (All) or category occurrences
    images: int = 0  # denominator for individual accuracy and invalid rate
    set_correct: int = 0
    individual_correct: int = 0
    invalid: int = 0
    valid_pairs: int = 0
    confused: int = 0
    unconfused_valid: int = 0

    def metrics(self) -> "Metrics":
        """Percentages computed with the official code's exact arithmetic (same float rounding)."""
        per_image = self.images // self.total if self.total else 1  # 2 for All, 1 per category
        num = self.total / 100
        return Metrics(
            set_accuracy=self.set_correct / num if num else 0.0,
            individual_accuracy=self.individual_correct / num / per_image if num else 0.0,
            confusion=self.confused / self.valid_pairs * 100 if self.valid_pairs else 0.0,
            invalid_rate=self.invalid / num / per_image if num else 0.0,
            precision=self.set_correct / self.unconfused_valid * 100 if self.unconfused_valid else 0.0,
            valid_pairs=self.valid_pairs,
            n=self.total,
            unconfused_valid=self.unconfused_valid,
        )


@dataclass(frozen=True)
class Metrics:
    """Percentages (unrounded) plus the valid-pair count and the row's denominator ``n``."""

    set_accuracy: float
    individual_accuracy: float
    confusion: float
    invalid_rate: float
    precision: float
    valid_pairs: int
    n: int = 0  # denominator of the row: pairs (All) or category occurrences
    unconfused_valid: int = 0  # valid pairs not confused (precision's denominator)

    def as_dict(self, decimals: int | None = 2) -> dict[str, float | int]:
        """The contract's metric object: percentages rounded to ``decimals`` (None: unrounded)."""
        out = {k: v for k, v in asdict(self).items() if k in METRIC_KEYS}
        if decimals is not None:
            out = {k: (round(v, decimals) if isinstance(v, float) else v) for k, v in out.items()}
        return out


@dataclass(frozen=True)
class ScoreReport:
    """Overall and per-category metrics for one set of choices, plus per-pair outcomes."""

    overall: Metrics
    per_category: dict[str, Metrics]
    outcomes: dict[str, PairOutcome] = field(default_factory=dict)

    def as_dict(self, decimals: int | None = 2) -> dict:
        return {
            "overall": self.overall.as_dict(decimals),
            "per_category": {c: m.as_dict(decimals) for c, m in self.per_category.items()},
        }


def category_order(pairs: Iterable[Pair]) -> list[str]:
    """Categories of ``pairs`` in the official table order (see ``Benchmark.categories``)."""
    from robustness.data.types import Benchmark

    return list(Benchmark(name="", pairs=tuple(pairs)).categories)


def score_pairs(pairs: Iterable[Pair], choices: ChoiceMap) -> ScoreReport:
    """Score ``pairs`` given a choice for both images of each pair (KeyError if one is missing)."""
    pairs = list(pairs)
    cats = category_order(pairs)
    overall = Counts()
    per_cat = {c: Counts() for c in cats}
    outcomes: dict[str, PairOutcome] = {}
    for pair in pairs:
        c1, c2 = choices[(pair.pair_id, 1)], choices[(pair.pair_id, 2)]
        out = pair_outcome(pair, c1, c2)
        outcomes[pair.pair_id] = out
        overall.total += 1
        overall.images += 2
        for cat in pair.pair_categories:
            per_cat[cat].total += 1
            per_cat[cat].images += 1
        # per-image tallies: overall once per image, categories by the image's own categories
        for image in (1, 2):
            idx = image - 1
            targets = [overall] + [per_cat[c] for c in pair.image_categories(image)]
            for row in targets:
                row.individual_correct += out.correct[idx]
                row.invalid += out.invalid[idx]
        # pair tallies: overall once, categories by category_1 + category_2
        for row in [overall] + [per_cat[c] for c in pair.pair_categories]:
            row.set_correct += out.both_correct
            if out.valid:
                row.valid_pairs += 1
                row.confused += out.confused
                row.unconfused_valid += not out.confused
    return ScoreReport(
        overall=overall.metrics(),
        per_category={c: per_cat[c].metrics() for c in cats},
        outcomes=outcomes,
    )
