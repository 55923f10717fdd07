"""Adversarial image attacks (FGSM, PGD): a separate kind, because they need the model.

A probe is pure on its input; an attack needs gradients of the model's answer with respect to
the pixels. So an :class:`AdversarialAttack` is not a :class:`~attacks.base.Probe`: it declares
conditions the same way, but ``perturb`` takes a :class:`GradientOracle` that the runner builds
from a white-box adapter (Hugging Face, the reference model). The intended flow:

1. configuration time: the runner sees an ``AdversarialAttack`` and rejects adapters that
   cannot give gradients (API models) before any work;
2. a pre-pass per condition: ``perturb`` turns each pair's clean queries into adversarial ones
   (the oracle calls the *uncached* adapter, batched over queries);
3. answering as for any probe, through the cache: the adversarial pixels' digest keys the
   answers, so a rerun repeats the attack (deterministic) and is then served from the cache.

The attack is untargeted on the query's right answer: it lowers the margin of the right option
over the wrong one (with two options that is the same as pushing towards the wrong one). The
budget is an L∞ ball of ``eps`` grey levels (of 255) around the clean pixels; results are
rounded to uint8 and stay inside the ball (integer ``eps``). The random start of PGD is seeded
per image from (attack name, eps, pair id, image, run seed), so the same model gets the same
adversarial pixels in every run. Truths never change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any, Protocol, Sequence

import numpy as np

from attacks.base import Condition, ProbeContext, derive_seed, source_image
from attacks.corruptions import check_target, targeted
from robustness.data.types import Pair
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.data.query import Query


class GradientOracle(Protocol):
    """White-box access to the model for one batch of queries.

    For each query and a float candidate image (same shape as the query's pixels, values in
    [0, 255]) return the margin of the query's right answer over the wrong one (e.g. the
    letter-logit difference for MC/GD, the option log-likelihood difference for PS) and its
    gradient with respect to that image, in the image's own coordinates (the oracle
    differentiates through the processor's resize and normalisation).
    """

    def __call__(self, queries: Sequence[Query], images: Sequence[np.ndarray]
                 ) -> list[tuple[float, np.ndarray]]: ...


class AdversarialAttack(ABC):
    """Base of gradient attacks: named conditions, one per budget ``eps`` (grey levels)."""

    name: str = ""
    requires = "gradients"

    def __init__(self, eps: Sequence[int] | int = (1, 2, 4, 8), target: str = "both",
                 name: str | None = None) -> None:
        self.name = type(self).name if name is None else str(name)
        budgets = [eps] if isinstance(eps, int) else list(eps)
        if not budgets or any(isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= 64
                              for e in budgets):
            raise ConfigError(f"attack {self.name}: eps must be integers in 1..64 grey levels, "
                              f"got {eps!r}")
        if len(set(budgets)) != len(budgets):
            raise ConfigError(f"attack {self.name}: eps repeats a value: {budgets}")
        self.eps = tuple(budgets)
        self.target = check_target(target, self.name)

    def settings(self) -> dict[str, Any]:
        """Parameters besides eps and target (recorded in each condition)."""
        return {}

    def conditions(self) -> list[Condition]:
        return [Condition(name=f"{self.name}@{e}", probe=self.name,
                          params={"eps": e, "target": self.target, **self.settings()})
                for e in self.eps]

    @abstractmethod
    def attack(self, queries: Sequence[Query], oracle: GradientOracle, eps: int,
               seeds: Sequence[int]) -> list[np.ndarray]:
        """Adversarial uint8 pixels for ``queries`` (one batch), within ``eps`` of the clean."""

    def perturb(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
                oracle: GradientOracle, ctx: ProbeContext) -> Sequence[Query]:
        """The pair's queries with adversarial images on the targeted slots."""
        eps = int(condition.params["eps"])
        chosen = [q for q in queries if targeted(q, self.target)]
        seeds = [derive_seed(self.name, eps, pair.pair_id, source_image(q), ctx.seed)
                 for q in chosen]
        adversarial = dict(zip((q.image_index for q in chosen),
                               self.attack(chosen, oracle, eps, seeds)))
        return tuple(replace(q, image=ImageInput(adversarial[q.image_index]))
                     .with_meta(attack=condition.name) if q.image_index in adversarial else q
                     for q in queries)


def _finish(clean: np.ndarray, adv: np.ndarray, eps: int) -> np.ndarray:
    """Round to grey levels inside the eps ball and the valid range (uint8)."""
    out = np.clip(np.rint(adv), clean - eps, clean + eps)
    return np.clip(out, 0, 255).astype(np.uint8)


class FGSM(AdversarialAttack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size eps."""

    name = "fgsm"

    def attack(self, queries: Sequence[Query], oracle: GradientOracle, eps: int,
               seeds: Sequence[int]) -> list[np.ndarray]:
        clean = [q.image.pixels.astype(np.float64) for q in queries]
        grads = [g for _, g in oracle(queries, clean)]
        return [_finish(c, c - eps * np.sign(g), eps) for c, g in zip(clean, grads)]


class PGD(AdversarialAttack):
    """Projected gradient descent on the margin (Madry et al. 2018), L∞, seeded random start.

    ``steps`` signed-gradient steps of ``step_size`` × eps, each projected back into the eps
    ball and [0, 255]; the result is the iterate with the lowest margin seen."""

    name = "pgd"

    def __init__(self, eps: Sequence[int] | int = (1, 2, 4, 8), steps: int = 10,
                 step_size: float = 0.25, random_start: bool = True, target: str = "both",
                 name: str | None = None) -> None:
        super().__init__(eps=eps, target=target, name=name)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"attack {self.name}: steps must be a positive integer")
        if not 0 < float(step_size) <= 1:
            raise ConfigError(f"attack {self.name}: step_size is a fraction of eps in (0, 1]")
        self.steps, self.step_size, self.random_start = steps, float(step_size), bool(random_start)

    def settings(self) -> dict[str, Any]:
        return {"steps": self.steps, "step_size": self.step_size,
                "random_start": self.random_start}

    def attack(self, queries: Sequence[Query], oracle: GradientOracle, eps: int,
               seeds: Sequence[int]) -> list[np.ndarray]:
        clean = [q.image.pixels.astype(np.float64) for q in queries]
        current = []
        for c, seed in zip(clean, seeds):
            start = c
            if self.random_start:
                noise = np.random.default_rng(seed).uniform(-eps, eps, size=c.shape)
                start = np.clip(c + noise, 0, 255)
            current.append(start)
        best = [c.copy() for c in current]
        best_margin = [np.inf] * len(clean)
        step = self.step_size * eps
        for _ in range(self.steps):
            results = oracle(queries, current)
            for i, (margin, grad) in enumerate(results):
                if margin < best_margin[i]:
                    best_margin[i], best[i] = margin, current[i].copy()
                moved = current[i] - step * np.sign(grad)
                current[i] = np.clip(np.clip(moved, clean[i] - eps, clean[i] + eps), 0, 255)
        for i, (margin, _) in enumerate(oracle(queries, current)):
            if margin < best_margin[i]:
                best[i] = current[i]
        return [_finish(c, b, eps) for c, b in zip(clean, best)]
