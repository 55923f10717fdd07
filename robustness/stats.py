"""Uncertainty for pair metrics: seeded bootstrap CIs over pairs, paired differences, exact McNemar.

Works on per-pair outcome arrays so the same code serves ``score``, probe shifts and the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Sequence

import numpy as np

from robustness.metrics import PairOutcome

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class OutcomeArrays:
    """Per-pair indicators used by the resampling statistics."""

    both_correct: np.ndarray  # 0/1
    n_correct: np.ndarray  # 0..2
    valid: np.ndarray  # 0/1
    confused: np.ndarray  # 0/1

    @classmethod
    def from_outcomes(cls, outcomes: Sequence[PairOutcome]) -> "OutcomeArrays":
        return cls(
            both_correct=np.array([o.both_correct for o in outcomes], dtype=float),
            n_correct=np.array([sum(o.correct) for o in outcomes], dtype=float),
            valid=np.array([o.valid for o in outcomes], dtype=float),
            confused=np.array([o.confused for o in outcomes], dtype=float),
        )


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return (round(float(lo), 2), round(float(hi), 2))


def bootstrap_cis(outcomes: Sequence[PairOutcome], *, resamples: int = DEFAULT_RESAMPLES,
                  seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile bootstrap CIs (percent) over pairs for set/individual accuracy and confusion."""
    if not outcomes:
        return {}
    arr = OutcomeArrays.from_outcomes(outcomes)
    idx = _resample_indices(len(outcomes), resamples, seed)
    set_acc = 100.0 * arr.both_correct[idx].mean(axis=1)
    ind_acc = 100.0 * arr.n_correct[idx].sum(axis=1) / (2 * len(outcomes))
    valid = arr.valid[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(valid > 0, 100.0 * arr.confused[idx].sum(axis=1) / valid, np.nan)
    return {
        "set_accuracy": list(_percentile_ci(set_acc, level)),
        "individual_accuracy": list(_percentile_ci(ind_acc, level)),
        "confusion": list(_percentile_ci(conf, level)),
    }


def paired_bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], *,
                             resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                             level: float = 0.95) -> tuple[float, float]:
    """CI (percentage points) of mean(b) - mean(a) over the same pairs, resampled jointly.

    ``a`` and ``b`` are per-pair 0/1 indicators (e.g. both answers right) aligned by pair.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError("paired samples must have the same length")
    if a_arr.size == 0:
        return (float("nan"), float("nan"))
    idx = _resample_indices(a_arr.size, resamples, seed)
    diffs = 100.0 * (b_arr[idx].mean(axis=1) - a_arr[idx].mean(axis=1))
    return _percentile_ci(diffs, level)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value on paired binary outcomes (binomial test on discordants)."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)
