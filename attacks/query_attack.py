"""A score-based black-box attack: SimBA in a low-frequency DCT basis (Guo et al. 2019).

For a model that gives scores but no gradients (a Hugging Face model used as a black box, an
API model with log-probabilities), the attack asks the model itself: it tries one low-frequency
cosine pattern at a time, added or subtracted at the full budget, and keeps the change when the
right answer's margin falls. Every candidate is a real uint8 image asked through the answer
cache (so queries are cached and counted in ``usage``); the attack stops on an image once its
answer flips or its query budget is spent. Budgets are L∞ grey levels of the original image.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from attacks.adversarial import AdversarialAttack, QueryPair, project
from attacks.base import Condition, ProbeContext, derive_seed, source_image
from robustness.data.query import Answer, Query
from robustness.data.types import OptionLabel, Pair
from robustness.errors import ConfigError

# (queries with candidate images, displayed labels) -> margins of those labels over the other
MarginScorer = Callable[[Sequence[Query], Sequence[OptionLabel]], np.ndarray]


def dct_pattern(shape: tuple[int, ...], u: int, v: int) -> np.ndarray:
    """The (u, v) 2-D cosine basis image, scaled to a maximum of 1 (broadcast over channels)."""
    h, w = shape[0], shape[1]
    ys = np.cos(math.pi * (2 * np.arange(h) + 1) * u / (2 * h))
    xs = np.cos(math.pi * (2 * np.arange(w) + 1) * v / (2 * w))
    pattern = np.outer(ys, xs)
    pattern /= max(float(np.abs(pattern).max()), 1e-12)
    return pattern if len(shape) == 2 else pattern[..., None].repeat(shape[2], axis=2)


class SimBA(AdversarialAttack):
    """SimBA-DCT under an L∞ budget of ``eps`` grey levels and ``max_queries`` per image."""

    name = "simba"
    needs = "scores"

    def __init__(self, eps: Sequence[int] | int = (4, 8, 16), max_queries: int = 200,
                 freq: float = 0.125, target: str = "both", name: str | None = None) -> None:
        super().__init__(eps=eps, target=target, norm="linf", name=name)
        if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 1:
            raise ConfigError(f"probe {self.name}: max_queries must be a positive integer")
        if not 0 < float(freq) <= 1:
            raise ConfigError(f"probe {self.name}: freq is a fraction of each side in (0, 1]")
        self.max_queries, self.freq = max_queries, float(freq)

    def settings(self) -> dict[str, Any]:
        return {"max_queries": self.max_queries, "freq": self.freq}

    def attack(self, queries, oracle, eps, seeds, labels):  # pragma: no cover - not gradient
        raise TypeError(f"probe {self.name} asks scores, not gradients: use search()")

    def search(self, queries: Sequence[Query], scorer: MarginScorer, eps: int,
               seeds: Sequence[int], labels: Sequence[OptionLabel]
               ) -> tuple[list[np.ndarray], list[int]]:
        """Adversarial uint8 pixels and the model queries each image used."""
        from explain.scoring import with_image

        clean = [q.image.pixels.astype(np.float64) for q in queries]
        current = [c.copy() for c in clean]
        if eps == 0 or not queries:
            return [c.astype(np.uint8) for c in clean], [0] * len(queries)
        margins = np.asarray(scorer(list(queries), list(labels)), dtype=np.float64)
        used = [1] * len(queries)
        orders = []
        for c, seed in zip(clean, seeds):
            h, w = c.shape[0], c.shape[1]
            fh, fw = max(2, int(round(h * self.freq))), max(2, int(round(w * self.freq)))
            order = [(u, v) for u in range(fh) for v in range(fw)]
            np.random.default_rng(seed).shuffle(order)
            orders.append(order)
        step = 0
        while True:
            active = [i for i in range(len(queries))
                      if margins[i] >= 0 and used[i] < self.max_queries
                      and step < len(orders[i])]
            if not active:
                break
            patterns = {i: dct_pattern(clean[i].shape, *orders[i][step]) for i in active}
            for sign in (1.0, -1.0):
                trying = [i for i in active if patterns[i] is not None
                          and used[i] < self.max_queries]
                if not trying:
                    break
                candidates = {i: np.rint(project(clean[i], current[i] + sign * eps * patterns[i],
                                                 eps, "linf")) for i in trying}
                asked = [with_image(queries[i], candidates[i]) for i in trying]
                new = np.asarray(scorer(asked, [labels[i] for i in trying]), dtype=np.float64)
                for i, m in zip(trying, new):
                    used[i] += 1
                    if m < margins[i]:
                        margins[i], current[i] = m, candidates[i]
                        patterns[i] = None  # this direction worked: no need to try its opposite
            step += 1
        return [np.clip(c, 0, 255).astype(np.uint8) for c in current], used

    def perturb_with_scores(self, condition: Condition, batch: Sequence[tuple[Pair, QueryPair]],
                            scorer: MarginScorer, ctx: ProbeContext,
                            clean: Mapping[tuple[str, int], Answer]) -> list[QueryPair]:
        """Each pair's queries with the search's images on the targeted slots."""
        eps = int(condition.params["eps"])
        picked = [(pair, q, label) for pair, qs in batch
                  for q, label in self.chosen(pair, qs, clean)]
        seeds = [derive_seed(self.name, eps, pair.pair_id, source_image(q), ctx.seed)
                 for pair, q, _ in picked]
        pixels, used = self.search([q for _, q, _ in picked], scorer, eps, seeds,
                                   [label for _, _, label in picked])
        return self.assemble(condition, batch, picked, pixels, {"queries": used})

    def extra_metrics(self, condition, clean_answers, probe_answers, probe_queries):
        out = super().extra_metrics(condition, clean_answers, probe_answers, probe_queries)
        from attacks.base import index_by_key

        used = [q.meta["queries"] for q in index_by_key(probe_queries).values()
                if "queries" in q.meta]
        out["queries_mean"] = round(float(np.mean(used)), 2) if used else None
        return out
