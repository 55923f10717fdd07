"""Adversarial image attacks (FGSM, PGD, the targeted confusion attack) as run conditions.

A probe is pure on its input; an attack needs gradients of the model's answer with respect to
the pixels. An :class:`AdversarialAttack` declares conditions like any probe (one per budget,
``pgd@8``), but its queries come from :meth:`AdversarialAttack.perturb`, which takes a
:class:`GradientOracle` the runner builds from the white-box model (Hugging Face, the reference
model); ``apply`` is never used. The flow in a run:

1. configuration time: an attack on a model without gradients (API models) or in FF mode is
   refused in one line, before any work;
2. per batch of pairs, ``perturb`` turns the clean queries into adversarial ones (the oracle
   calls the *uncached* model);
3. answering as for any probe, through the cache: the adversarial pixels' digest keys the
   answers, so success is what the model actually answers, not the surrogate margin; a rerun
   repeats the (deterministic) attack and is then served from the cache.

The budget ``eps`` is in grey levels (of 255) of the *original* image: an L∞ ball (``norm:
linf``), or an L2 ball of radius ``eps × sqrt(pixels)`` (``norm: l2``, the same RMS change).
Results are rounded to uint8 inside the ball. PGD's random start is seeded per image from
(attack name, eps, pair id, image, run seed). Truths never change. Each adversarial query
records how far and how visibly it moved (L∞, L2, PSNR, SSIM against the clean image).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import replace
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from attacks.base import (Answers, Condition, Probe, ProbeContext, Queries, derive_seed,
                          displayed_label, index_by_key, source_image, success_rate)
from attacks.corruptions import check_target, targeted
from robustness.data.image import ImageInput
from robustness.data.query import Answer, Query
from robustness.data.types import OptionLabel, Pair, other_label
from robustness.errors import ConfigError

NORMS = ("linf", "l2")
QueryPair = tuple[Query, Query]


class GradientOracle(Protocol):
    """White-box access to the model for one batch of queries.

    For each query and a float candidate image (same shape as the query's pixels, values in
    [0, 255]) return the margin of ``labels[i]`` (displayed; default the query's right answer)
    over the other option (the letter-logit difference for MC/GD, the option log-likelihood
    difference for PS) and its gradient with respect to that image, in the image's own
    coordinates (the oracle differentiates through the processor's resize and normalisation).
    """

    def __call__(self, queries: Sequence[Query], images: Sequence[np.ndarray],
                 labels: Sequence[OptionLabel] | None = None
                 ) -> list[tuple[float, np.ndarray]]: ...


class AdversarialAttack(Probe):
    """Base of attacks that ask the model: one condition per budget ``eps`` (grey levels).

    ``needs`` declares what the runner must hand over: ``"gradients"`` (a
    :class:`GradientOracle` of the white-box model, :meth:`perturb`) or ``"scores"`` (a margin
    scorer through the answer cache, ``perturb_with_scores`` — the query attacks)."""

    name: str = ""
    needs: str = "gradients"

    def __init__(self, eps: Sequence[int] | int = (1, 2, 4, 8), target: str = "both",
                 norm: str = "linf", name: str | None = None) -> None:
        self._set_name(name)
        budgets = [eps] if isinstance(eps, int) else list(eps)
        if not budgets or any(isinstance(e, bool) or not isinstance(e, int) or not 0 <= e <= 64
                              for e in budgets):
            raise ConfigError(f"probe {self.name}: eps must be integers in 0..64 grey levels, "
                              f"got {eps!r}")
        if len(set(budgets)) != len(budgets):
            raise ConfigError(f"probe {self.name}: eps repeats a value: {budgets}")
        if norm not in NORMS:
            raise ConfigError(f"probe {self.name}: norm must be one of {', '.join(NORMS)}, "
                              f"got {norm!r}")
        self.eps = tuple(sorted(budgets))
        self.norm = norm
        self.target = check_target(target, self.name)

    def settings(self) -> dict[str, Any]:
        """Parameters besides eps, target and norm (recorded in each condition)."""
        return {}

    def conditions(self) -> list[Condition]:
        return [Condition(name=f"{self.name}@{e}", probe=self.name,
                          params={"eps": e, "target": self.target, "norm": self.norm,
                                  **self.settings()})
                for e in self.eps]

    def apply(self, condition: Condition, pair: Pair, queries: QueryPair,
              ctx: ProbeContext) -> Sequence[Query]:
        raise TypeError(f"probe {self.name} needs the model's gradients: the runner calls "
                        "perturb() with an oracle, never apply()")

    @abstractmethod
    def attack(self, queries: Sequence[Query], oracle: GradientOracle, eps: int,
               seeds: Sequence[int], labels: Sequence[OptionLabel]) -> list[np.ndarray]:
        """Adversarial uint8 pixels for ``queries`` within ``eps`` of the clean ones, lowering
        the margin of ``labels`` (displayed) over the other option."""

    def chosen(self, pair: Pair, queries: QueryPair,
               clean: Mapping[tuple[str, int], Answer]) -> list[tuple[Query, OptionLabel]]:
        """The slots to attack and the displayed label whose margin to lower: the targeted
        slots, away from the right answer (untargeted)."""
        return [(q, q.correct) for q in queries if targeted(q, self.target)]

    def perturb(self, condition: Condition, batch: Sequence[tuple[Pair, QueryPair]],
                oracle: GradientOracle, ctx: ProbeContext,
                clean: Mapping[tuple[str, int], Answer]) -> list[QueryPair]:
        """Each pair's queries with adversarial images on the attacked slots (one oracle batch
        for the whole list of pairs); each attacked query records its distances in ``meta``."""
        eps = int(condition.params["eps"])
        picked = [(pair, q, label) for pair, qs in batch for q, label in self.chosen(pair, qs,
                                                                                     clean)]
        seeds = [derive_seed(self.name, eps, pair.pair_id, source_image(q), ctx.seed)
                 for pair, q, _ in picked]
        pixels = self.attack([q for _, q, _ in picked], oracle, eps, seeds,
                             [label for _, _, label in picked]) if picked else []
        return self.assemble(condition, batch, picked, pixels)

    def assemble(self, condition: Condition, batch: Sequence[tuple[Pair, QueryPair]],
                 picked: Sequence[tuple[Pair, Query, OptionLabel]],
                 pixels: Sequence[np.ndarray],
                 meta: Mapping[str, Sequence[Any]] | None = None) -> list[QueryPair]:
        """The batch's query pairs with the attacked images in place, each recording its
        distances from the clean image (and ``meta``'s per-image values)."""
        moved = {(pair.pair_id, q.image_index): (n, q, adv)
                 for n, ((pair, q, _), adv) in enumerate(zip(picked, pixels))}
        out = []
        for pair, qs in batch:
            new = []
            for q in qs:
                if q.key in moved:
                    n, clean_q, adv = moved[q.key]
                    extra = {k: v[n] for k, v in (meta or {}).items()}
                    q = replace(q, image=ImageInput(adv)).with_meta(
                        attack=condition.name, **distances(clean_q.image.pixels, adv), **extra)
                new.append(q)
            out.append((new[0], new[1]))
        return out

    def extra_metrics(self, condition: Condition, clean_answers: Answers, probe_answers: Answers,
                      probe_queries: Queries) -> dict[str, Any]:
        """Attack success (right before, wrong after, over images right before) and how far
        and how visibly the attacked images moved (means over attacked images)."""
        attacked = [q for q in index_by_key(probe_queries).values() if "linf" in q.meta]

        def mean(field: str) -> float | None:
            values = [q.meta[field] for q in attacked if q.meta[field] is not None]
            return round(float(np.mean(values)), 4) if values else None

        return {"attack_success_rate": success_rate(attacked, index_by_key(clean_answers),
                                                    index_by_key(probe_answers)),
                "attacked_images": len(attacked), "linf_mean": mean("linf"),
                "l2_mean": mean("l2"), "psnr_mean": mean("psnr"), "ssim_mean": mean("ssim")}


def min_eps_per_pair(attack: AdversarialAttack, pair_ids: Sequence[str],
                     correct: Mapping[str, Mapping[str, bool]]) -> dict[str, int | None]:
    """The smallest budget of ``attack``'s ladder that breaks each pair (both answers right on
    clean, not both right under the attack); None where no budget breaks it or it was not right
    on clean. ``correct[condition][pair_id]``: both answers right."""
    out: dict[str, int | None] = {}
    for pid in pair_ids:
        out[pid] = None
        if not correct["clean"].get(pid):
            continue
        for condition in attack.conditions():
            if not correct[condition.name].get(pid, True):
                out[pid] = int(condition.params["eps"])
                break
    return out


# --------------------------------------------------------------- distances and visibility


def distances(clean: np.ndarray, adversarial: np.ndarray) -> dict[str, float | None]:
    """L∞ and L2 change (grey levels), PSNR (dB; None for identical images) and SSIM."""
    c = clean.astype(np.float64)
    a = adversarial.astype(np.float64)
    diff = a - c
    mse = float(np.mean(diff ** 2))
    return {"linf": float(np.abs(diff).max()) if diff.size else 0.0,
            "l2": float(np.sqrt(np.sum(diff ** 2))),
            "psnr": None if mse == 0 else round(10 * math.log10(255.0 ** 2 / mse), 4),
            "ssim": round(ssim(clean, adversarial), 6)}


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004): 11-px Gaussian window (sigma 1.5), K1 0.01,
    K2 0.03, L 255; colour images are averaged over channels."""
    import cv2

    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if x.ndim == 3:
        return float(np.mean([ssim(x[..., i], y[..., i]) for i in range(x.shape[-1])]))

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * cov + c2)
    den = (mx ** 2 + my ** 2 + c1) * (vx + vy + c2)
    return float(np.mean(num / den))


# ------------------------------------------------------------------------------ the attacks


def project(clean: np.ndarray, candidate: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """``candidate`` moved back into the budget around ``clean`` and into [0, 255]."""
    delta = candidate - clean
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
    else:
        radius = eps * math.sqrt(clean.size)
        length = float(np.linalg.norm(delta))
        if length > radius > 0:
            delta = delta * (radius / length)
        elif radius == 0:
            delta = np.zeros_like(delta)
    return np.clip(clean + delta, 0, 255)


def _finish(clean: np.ndarray, adv: np.ndarray, eps: int, norm: str) -> np.ndarray:
    """Round to grey levels inside the budget and the valid range (uint8)."""
    out = np.rint(project(clean, adv, eps, norm))
    if norm == "l2":  # rounding can push the L2 length a hair over: shrink to integers inside
        out = np.rint(project(clean, out, eps - 0.5 if eps >= 1 else 0, norm))
    return np.clip(out, 0, 255).astype(np.uint8)


def _step(grad: np.ndarray, norm: str) -> np.ndarray:
    """The steepest-descent direction of unit size: sign (L∞) or the unit RMS gradient (L2)."""
    if norm == "linf":
        return np.sign(grad)
    rms = float(np.sqrt(np.mean(grad ** 2)))
    return grad / rms if rms > 0 else np.zeros_like(grad)


class FGSM(AdversarialAttack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size eps."""

    name = "fgsm"

    def attack(self, queries: Sequence[Query], oracle: GradientOracle, eps: int,
               seeds: Sequence[int], labels: Sequence[OptionLabel]) -> list[np.ndarray]:
        clean = [q.image.pixels.astype(np.float64) for q in queries]
        if eps == 0:
            return [c.astype(np.uint8) for c in clean]
        grads = [g for _, g in oracle(queries, clean, labels)]
        return [_finish(c, c - eps * _step(g, self.norm), eps, self.norm)
                for c, g in zip(clean, grads)]


class PGD(AdversarialAttack):
    """Projected gradient descent on the margin (Madry et al. 2018), seeded random start.

    ``steps`` steepest-descent steps of ``step_size`` × eps, each projected back into the
    budget and [0, 255]; the result is the iterate with the lowest margin seen."""

    name = "pgd"

    def __init__(self, eps: Sequence[int] | int = (1, 2, 4, 8), steps: int = 10,
                 step_size: float = 0.25, random_start: bool = True, target: str = "both",
                 norm: str = "linf", name: str | None = None) -> None:
        super().__init__(eps=eps, target=target, norm=norm, name=name)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"probe {self.name}: steps must be a positive integer")
        if not 0 < float(step_size) <= 1:
            raise ConfigError(f"probe {self.name}: step_size is a fraction of eps in (0, 1]")
        self.steps, self.step_size, self.random_start = steps, float(step_size), bool(random_start)

    def settings(self) -> dict[str, Any]:
        return {"steps": self.steps, "step_size": self.step_size,
                "random_start": self.random_start}

    def attack(self, queries: Sequence[Query], oracle: GradientOracle, eps: int,
               seeds: Sequence[int], labels: Sequence[OptionLabel]) -> list[np.ndarray]:
        clean = [q.image.pixels.astype(np.float64) for q in queries]
        if eps == 0:  # the budget allows no change: the clean image, exactly
            return [c.astype(np.uint8) for c in clean]
        current = []
        for c, seed in zip(clean, seeds):
            start = c
            if self.random_start:
                noise = np.random.default_rng(seed).uniform(-eps, eps, size=c.shape)
                start = project(c, c + noise, eps, self.norm)
            current.append(start)
        best = [c.copy() for c in current]
        best_margin = [np.inf] * len(clean)
        step = self.step_size * eps
        for _ in range(self.steps):
            results = oracle(queries, current, labels)
            for i, (margin, grad) in enumerate(results):
                if margin < best_margin[i]:
                    best_margin[i], best[i] = margin, current[i].copy()
                current[i] = project(clean[i], current[i] - step * _step(grad, self.norm), eps,
                                     self.norm)
        for i, (margin, _) in enumerate(oracle(queries, current, labels)):
            if margin < best_margin[i]:
                best[i] = current[i]
        return [_finish(c, b, eps, self.norm) for c, b in zip(clean, best)]


class PGDConfusion(PGD):
    """The targeted confusion attack: push one image of a pair towards the answer the model
    gives the *other* image, so it answers both the same — the failure MediConfusion measures.

    Per pair it attacks the image whose clean answer is less certain (the smaller letter
    margin or option-score gap, or ``target: image1 | image2``); a pair the model already
    answers alike is left as it is."""

    name = "pgd_confusion"

    def __init__(self, eps: Sequence[int] | int = (1, 2, 4, 8), steps: int = 10,
                 step_size: float = 0.25, random_start: bool = True, target: str = "auto",
                 norm: str = "linf", name: str | None = None) -> None:
        self.pick = target
        if target not in ("auto", "image1", "image2"):
            raise ConfigError(f"probe {name or self.name}: target must be auto, image1 or "
                              f"image2, got {target!r}")
        super().__init__(eps=eps, steps=steps, step_size=step_size, random_start=random_start,
                         target="both", norm=norm, name=name)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "pick": self.pick}

    def chosen(self, pair: Pair, queries: QueryPair,
               clean: Mapping[tuple[str, int], Answer]) -> list[tuple[Query, OptionLabel]]:
        answers = [clean.get(q.key) for q in queries]
        if any(a is None or a.choice is None for a in answers):
            return []
        if answers[0].choice == answers[1].choice:
            return []  # already confused
        if self.pick == "auto":
            slot = min((0, 1), key=lambda i: _certainty(answers[i]))
        else:
            slot = int(self.pick[-1]) - 1
        q, other = queries[slot], answers[1 - slot]
        wanted = displayed_label(q, other.choice)
        return [(q, other_label(wanted))]  # lower the margin of what it must stop answering


def _certainty(answer: Answer) -> float:
    """How sure a clean answer was: |letter log-prob gap| (MC via GD-like raw, GD) or the
    option-score gap (PS); answers without scores count as certain."""
    raw = answer.raw or {}
    scores = raw.get("letter_logprobs") or raw.get("option_scores")
    if isinstance(scores, dict) and len(scores) == 2:
        a, b = (float(v) for v in scores.values())
        return abs(a - b)
    return math.inf
