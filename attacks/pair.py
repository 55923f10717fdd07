"""Pair perturbations: move, duplicate or mix the two images of a confusing pair.

The model answers one image at a time, so the record key of a query stays its *slot*
(``image_index`` 1 or 2, one record per slot as ``robustness score`` expects). What changes
is which original image a slot shows (``meta["source_image"]``) and which truth the slot is
scored against (``correct``, plus ``meta["truth_image"]``). Records carry that truth as
``"correct"``; score a condition with :func:`attacks.base.scoring_pair`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from attacks.base import (Answers, Condition, Probe, ProbeContext, Queries, QueryKey,
                          displayed_label, index_by_key, percent, source_image, truth)
from attacks.corruptions import check_target, targeted
from robustness.data.types import Pair
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.data.query import Answer, Query


def show_image_of(slot: Query, other: Query) -> Query:
    """``slot`` showing ``other``'s image and scored against ``other``'s truth."""
    moved = replace(slot, image=other.image, correct=displayed_label(slot, truth(other)))
    return moved.with_meta(source_image=source_image(other), truth_image=source_image(other))


def _answers_agree(probe: Mapping[QueryKey, Answer], clean: Mapping[QueryKey, Answer],
                   pairs: list[tuple[QueryKey, QueryKey]]) -> float | None:
    """% of (probe key, clean key) pairs whose answers are the same valid option."""
    usable = [(p, c) for p, c in pairs if p in probe and c in clean]
    same = sum(1 for p, c in usable
               if probe[p].choice is not None and probe[p].choice == clean[c].choice)
    return percent(same, len(usable))


class SwapImages(Probe):
    """Slot 1 shows image 2 and slot 2 shows image 1; the truths swap with the images.

    A model that answers from the pixels alone keeps its set accuracy and confusion; its
    per-slot answers swap (flip rate vs clean = share of images answered differently across
    the pair). ``answer_follows_image`` checks it: the % of answers equal to the clean answer
    for the same image (100 for a deterministic model; less reveals dependence on something
    other than the image: batch position, sampling, a stale cache)."""

    name = "swap_images"

    def __init__(self, name: str | None = None) -> None:
        self._set_name(name)

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name, params={"slots": [2, 1]})]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        q1, q2 = queries
        return (show_image_of(q1, q2), show_image_of(q2, q1))

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        queries = index_by_key(probe_queries)
        links = [(k, (k[0], source_image(q))) for k, q in queries.items()]
        return {"answer_follows_image": _answers_agree(index_by_key(probe_answers),
                                                       index_by_key(clean_answers), links)}


class SameImage(Probe):
    """Both slots show the same original image (``source``: 1 by default), and both are scored
    against that image's truth.

    Meaning: the pair's two questions become identical, so a deterministic model must give the
    same answer twice. ``confusion`` is then expected near 100% (it measures answer
    consistency, not a failure), and set accuracy ≈ individual accuracy on the source image.
    ``self_consistency`` = % of pairs with the same valid answer in both slots;
    ``agreement_with_clean`` = % of duplicated-slot answers equal to the clean answer for the
    source image."""

    name = "same_image"

    def __init__(self, source: int = 1, name: str | None = None) -> None:
        self._set_name(name)
        if source not in (1, 2):
            raise ConfigError(f"probe {self.name}: source must be 1 or 2, got {source!r}")
        self.source = source

    def conditions(self) -> list[Condition]:
        return [Condition(name=self.name, probe=self.name, params={"source": self.source})]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        src = queries[self.source - 1]
        return tuple(show_image_of(q, src) for q in queries)

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        probe, clean = index_by_key(probe_answers), index_by_key(clean_answers)
        pair_ids = sorted({pid for pid, _ in probe if (pid, 1) in probe and (pid, 2) in probe})
        consistent = sum(1 for pid in pair_ids if probe[(pid, 1)].choice is not None
                         and probe[(pid, 1)].choice == probe[(pid, 2)].choice)
        dup = 3 - self.source  # the slot that shows the other slot's image
        links = [((pid, dup), (pid, self.source)) for pid in pair_ids]
        return {"self_consistency": percent(consistent, len(pair_ids)),
                "agreement_with_clean": _answers_agree(probe, clean, links)}


def blend_pixels(base: np.ndarray, other: np.ndarray, weight: float) -> np.ndarray:
    """``(1 − weight)·base + weight·other`` as uint8 in ``base``'s shape.

    ``other`` is resized to ``base``'s size (bilinear) and converted to its channel layout
    (grey → RGB by repetition, RGB → grey by luminance) first."""
    from PIL import Image

    h, w = base.shape[:2]
    img = Image.fromarray(other)
    img = img.convert("L" if base.ndim == 2 else "RGB")
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    mixed = (1.0 - weight) * base.astype(np.float64) + weight * np.asarray(img, dtype=np.float64)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


class Blend(Probe):
    """Mix the pair's other image into each image at a list of weights (a confusion curve).

    Slot k shows ``(1 − w)·image_k + w·image_other`` and keeps image k's truth: the truth stays
    with the dominant (base) image. Weights lie in (0, 0.5]; at 0.5 the two slots show the same
    picture (for equal sizes) and by this definition each keeps its own image's truth, so a
    deterministic model cannot get both right: set accuracy must fall to 0 and confusion rise
    to 100 — the curve's end point. ``follows_base`` / ``follows_other`` = % of answers equal
    to the clean answer of the base / the blended-in image, over images whose two clean
    answers differ (so the two are distinguishable)."""

    name = "blend"

    def __init__(self, weights: Sequence[float] = (0.1, 0.25, 0.4, 0.5), target: str = "both",
                 name: str | None = None) -> None:
        self._set_name(name)
        values = [weights] if isinstance(weights, (int, float)) else list(weights)
        if not values:
            raise ConfigError(f"probe {self.name}: weights is empty")
        for w in values:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 0.5:
                raise ConfigError(f"probe {self.name}: weight {w!r} must be in (0, 0.5] "
                                  "(the base image stays dominant)")
        labels = [self._label(w) for w in values]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"probe {self.name}: weights repeat: {values}")
        self.weights = tuple(float(w) for w in values)
        self.target = check_target(target, self.name)

    @staticmethod
    def _label(weight: float) -> str:
        return f"{weight:g}"

    def conditions(self) -> list[Condition]:
        return [Condition(name=f"{self.name}@{self._label(w)}", probe=self.name,
                          params={"weight": w, "target": self.target}) for w in self.weights]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        weight = float(condition.params["weight"])
        out = []
        for q, other in ((queries[0], queries[1]), (queries[1], queries[0])):
            if targeted(q, self.target):
                pixels = blend_pixels(q.image.pixels, other.image.pixels, weight)
                q = replace(q, image=ImageInput(pixels)).with_meta(
                    source_image=source_image(q), blended_image=source_image(other),
                    blend_weight=weight)
            out.append(q)
        return tuple(out)

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        probe, clean = index_by_key(probe_answers), index_by_key(clean_answers)
        blended = {k for k, q in index_by_key(probe_queries).items() if "blend_weight" in q.meta}
        base_same = other_same = n = 0
        for (pid, slot), answer in probe.items():
            if (pid, slot) not in blended:
                continue
            own, other = clean.get((pid, slot)), clean.get((pid, 3 - slot))
            if own is None or other is None or own.choice is None or other.choice is None:
                continue
            if own.choice == other.choice:
                continue
            n += 1
            base_same += answer.choice == own.choice
            other_same += answer.choice == other.choice
        return {"n_images": n, "follows_base": percent(base_same, n),
                "follows_other": percent(other_same, n)}
