"""How much an answer rests on the image versus the question and each option (Shapley values).

The input parts of a query are the image, the question text and, where the prompt lists them
(MC, GD), each displayed option's text; for PS and FF the options are what is scored, so the
parts are the image and the question. A part is *ablated* by replacing it with its baseline:
the image by the baseline image (black by default), a text by the empty string, rendered
through the mode's own templates and scored through the adapter (:mod:`explain.scoring`).

captum's exact :class:`~captum.attr.ShapleyValues` over the parts (a binary presence vector per
part) gives each part's contribution φ to the margin; every coalition is scored once (at most
2^4 = 16 requests per query, all queries in one adapter call). A part's share is
|φ| / Σ|φ| (percent); ``image_reliance`` is the image's share. φ depends only on the coalition
table, so with a :class:`ShapleyRecord` a rerun (its margins from the answer cache) reads φ back
instead of loading captum again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any, Sequence

import numpy as np

from robustness.data.derived import KeyedRecord, derivation_key
from robustness.data.types import OptionLabel
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode
from robustness.data.query import Query

from explain.images import baseline_image, check_baseline
from explain.scoring import AnswerScorer, with_image

LETTER_PARTS = ("image", "question", "option_A", "option_B")
OPTION_PARTS = ("image", "question")


@dataclass
class PartAttribution:
    """Shapley values of one query's margin over its input parts."""

    pair_id: str
    image_index: int
    target: OptionLabel
    values: dict[str, float]  # part -> φ (margin units)
    full: float  # margin with every part present
    empty: float  # margin with every part ablated
    shares: dict[str, float] = field(default_factory=dict)  # part -> % of Σ|φ|

    @property
    def image_reliance(self) -> float | None:
        return self.shares.get("image")


class ShapleyRecord(KeyedRecord):
    """φ per coalition table (``table_key``), kept in the cache folder."""

    @staticmethod
    def valid(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)


@functools.lru_cache(maxsize=1)
def _captum_version() -> str:
    from importlib.metadata import version

    return f"captum=={version('captum')}"


def table_key(parts: Sequence[str], table: dict[tuple[int, ...], float]) -> str:
    """What φ is computed from: the parts, every coalition's margin and captum's version."""
    return derivation_key(list(parts), [[list(c), float(m)] for c, m in sorted(table.items())],
                          _captum_version())


def exact_shapley(parts: Sequence[str], table: dict[tuple[int, ...], float]) -> list[float]:
    """captum's exact Shapley values of the presence game given by ``table``."""
    import torch
    from captum.attr import ShapleyValues

    def forward(presence: Any) -> Any:
        rows = [tuple(int(v) for v in row) for row in presence.round().long().tolist()]
        return torch.tensor([table[r] for r in rows], dtype=torch.float64)

    ones = torch.ones((1, len(parts)), dtype=torch.float64)
    return ShapleyValues(forward).attribute(
        ones, baselines=torch.zeros_like(ones), feature_mask=torch.arange(len(parts))[None],
        perturbations_per_eval=len(table))[0].tolist()


class PartShapley:
    """Exact Shapley values of the answer margin over input parts, via captum; ``record``
    keeps them by coalition table."""

    name = "shapley"

    def __init__(self, baseline: str = "black", record: ShapleyRecord | None = None) -> None:
        self.baseline = check_baseline(baseline)
        self.record = record or ShapleyRecord(None)

    def parts(self, scorer: AnswerScorer) -> tuple[str, ...]:
        return LETTER_PARTS if scorer.kind == "letter" else OPTION_PARTS

    def ablate(self, query: Query, parts: Sequence[str], present: Sequence[int]) -> Query:
        """``query`` with every part whose presence bit is 0 replaced by its baseline."""
        keep = dict(zip(parts, present))
        q = query
        if not keep.get("image", 1):
            q = with_image(q, baseline_image(query.image.pixels, self.baseline))
        if not keep.get("question", 1):
            q = replace(q, question="")
        options = list(q.options)
        for i, label in enumerate(("A", "B")):
            if not keep.get(f"option_{label}", 1):
                options[i] = ""
        return replace(q, options=tuple(options))  # type: ignore[arg-type]

    def attribute(self, adapter: ModelAdapter, mode: AnsweringMode, queries: Sequence[Query],
                  targets: Sequence[OptionLabel],
                  scorer: AnswerScorer | None = None) -> list[PartAttribution]:
        scorer = scorer or AnswerScorer(adapter, mode)
        parts = self.parts(scorer)
        coalitions = list(product((0, 1), repeat=len(parts)))
        batch = [self.ablate(q, parts, c) for q in queries for c in coalitions]
        flat = scorer.margins(batch, [t for t in targets for _ in coalitions])
        out = []
        for i, (query, target) in enumerate(zip(queries, targets)):
            table = {c: flat[i * len(coalitions) + j] for j, c in enumerate(coalitions)}
            key = table_key(parts, table)
            phi = self.record.get(key)
            if phi is None or len(phi) != len(parts):
                phi = exact_shapley(parts, table)
                self.record.put(key, phi)
            values = dict(zip(parts, phi))
            total = sum(abs(v) for v in phi)
            shares = {p: (100.0 * abs(v) / total if total > 0 else 0.0) for p, v in values.items()}
            out.append(PartAttribution(query.pair_id, query.image_index, target, values,
                                       full=float(table[tuple([1] * len(parts))]),
                                       empty=float(table[tuple([0] * len(parts))]),
                                       shares=shares))
        return out


def mean_shares(attributions: Sequence[PartAttribution]) -> dict[str, float]:
    """Mean share per part over queries (parts missing in a query count as absent)."""
    names: list[str] = []
    for a in attributions:
        names += [p for p in a.shares if p not in names]
    return {p: float(np.mean([a.shares[p] for a in attributions if p in a.shares]))
            for p in names}
