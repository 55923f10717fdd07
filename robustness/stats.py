"""Uncertainty for pair metrics: seeded bootstrap CIs over pairs, paired differences, exact McNemar.

Works on per-pair outcome arrays so the same code serves ``score``, probe shifts and the gate.
Pairs that share an image are not independent (MediConfusion's 176 pairs use 228 images for 352
slots): given ``clusters`` (a cluster index per pair, :func:`robustness.data.types.pair_clusters`)
the bootstraps resample whole clusters — every per-pair array is first summed per cluster, and
ratio statistics are taken over the drawn clusters — and :func:`clustered_sign_flip` is the exact
paired test over clusters. Without clusters (or when every cluster is one pair) nothing changes.
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


def clustered(clusters: Sequence[int] | None) -> np.ndarray | None:
    """``clusters`` as an index array, or None when there is nothing to cluster (no clusters, or
    every pair its own cluster: resampling clusters would then be resampling pairs)."""
    if clusters is None:
        return None
    arr = np.asarray(clusters, dtype=int)
    return arr if arr.size and np.unique(arr).size < arr.size else None


def _per_cluster(values: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Sum of a per-pair array within each cluster (cluster ids 0..k-1)."""
    _, dense = np.unique(clusters, return_inverse=True)
    return np.bincount(dense, weights=np.asarray(values, dtype=float))


def clustered_sign_flip(differences: Sequence[int], clusters: Sequence[int] | None) -> float:
    """The exact sign-flip test over clusters: per-pair integer differences summed within each
    cluster flip sign together (pairs sharing an image are one unit). Without clusters: over
    pairs (equal to McNemar for 0/±1 differences)."""
    arr = clustered(clusters)
    if arr is None:
        return sign_flip_exact(differences)
    sums = _per_cluster(np.asarray(differences, dtype=float), arr)
    return sign_flip_exact([int(round(s)) for s in sums])


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return (round(float(lo), 2), round(float(hi), 2))


def bootstrap_cis(outcomes: Sequence[PairOutcome], *, resamples: int = DEFAULT_RESAMPLES,
                  seed: int = 0, level: float = 0.95,
                  clusters: Sequence[int] | None = None) -> dict[str, list[float]]:
    """Percentile bootstrap CIs (percent) over pairs (or clusters) for set/individual accuracy
    and confusion."""
    if not outcomes:
        return {}
    arr = OutcomeArrays.from_outcomes(outcomes)
    groups = clustered(clusters)
    if groups is not None:
        ones = np.ones(len(outcomes))
        terms = {"set_accuracy": (arr.both_correct, ones),
                 "individual_accuracy": (arr.n_correct, 2 * ones),
                 "confusion": (arr.confused, arr.valid)}
        return {name: list(bootstrap_contrast_ci([(1.0, num, den)], resamples=resamples,
                                                 seed=seed, level=level, clusters=groups))
                for name, (num, den) in terms.items()}
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
                             level: float = 0.95,
                             clusters: Sequence[int] | None = None) -> tuple[float, float]:
    """CI (percentage points) of mean(b) - mean(a) over the same pairs, resampled jointly
    (whole clusters of pairs when ``clusters`` are given).

    ``a`` and ``b`` are per-pair 0/1 indicators (e.g. both answers right) aligned by pair.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError("paired samples must have the same length")
    groups = clustered(clusters)
    if groups is not None:
        ones = np.ones(a_arr.size)
        return bootstrap_contrast_ci([(1.0, b_arr, ones), (-1.0, a_arr, ones)],
                                     resamples=resamples, seed=seed, level=level,
                                     clusters=groups)
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


def bootstrap_contrast_ci(terms: Sequence[tuple[float, Sequence[float], Sequence[float]]], *,
                          resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                          level: float = 0.95,
                          clusters: Sequence[int] | None = None) -> tuple[float, float]:
    """Paired bootstrap CI (percentage points) of a contrast of ratio metrics over the same pairs.

    Each term is ``(coefficient, numerators, denominators)`` with per-pair arrays aligned by pair;
    the statistic is ``sum(coef * 100 * sum(num) / sum(den))``. One set of resampled pair indices
    serves every term, so ``[(1, b, 1s), (-1, a, 1s)]`` is a paired difference and four terms give
    a difference in differences (e.g. the change of a probe's shift between two models).
    Resamples where a denominator sums to zero are dropped.
    """
    arrays = [(float(c), np.asarray(n, dtype=float), np.asarray(d, dtype=float))
              for c, n, d in terms]
    sizes = {a.size for _, n, d in arrays for a in (n, d)}
    if len(sizes) != 1:
        raise ValueError("all terms need per-pair arrays of the same length")
    groups = clustered(clusters)
    if groups is not None:  # one unit per cluster: its sums of every numerator and denominator
        if groups.size != sizes.pop():
            raise ValueError("clusters must give one cluster per pair")
        arrays = [(c, _per_cluster(n, groups), _per_cluster(d, groups)) for c, n, d in arrays]
        sizes = {arrays[0][1].size}
    size = sizes.pop()
    if size == 0:
        return (float("nan"), float("nan"))
    idx = _resample_indices(size, resamples, seed)
    total = np.zeros(resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        for coef, num, den in arrays:
            den_sum = den[idx].sum(axis=1)
            total += coef * np.where(den_sum > 0, 100.0 * num[idx].sum(axis=1) / den_sum, np.nan)
    return _percentile_ci(total, level)


def sign_flip_exact(differences: Sequence[int]) -> float:
    """Exact two-sided paired permutation (sign-flip) p-value for integer per-pair differences.

    Under the null each pair's difference is as likely to have either sign, so the p-value is the
    share of the 2^n sign assignments whose |sum| reaches the observed |sum| (zeros drop out).
    For 0/±1 differences this equals :func:`mcnemar_exact`; it also serves ±2 differences
    (individual accuracy) and differences in differences (a probe's shift, two models).
    """
    magnitudes: dict[int, int] = {}
    observed = 0
    for d in differences:
        if int(d) != d:
            raise ValueError("sign_flip_exact needs integer differences")
        d = int(d)
        observed += d
        if d:
            magnitudes[abs(d)] = magnitudes.get(abs(d), 0) + 1
    if not magnitudes:
        return 1.0
    # counts[s + offset] = number of sign assignments with sum s (exact integers)
    offset = sum(m * k for m, k in magnitudes.items())
    counts = [0] * (2 * offset + 1)
    counts[offset] = 1
    for magnitude, k in magnitudes.items():
        kernel = {magnitude * (2 * j - k): comb(k, j) for j in range(k + 1)}
        nxt = [0] * len(counts)
        for pos, ways in enumerate(counts):
            if ways:
                for shift, w in kernel.items():
                    nxt[pos + shift] += ways * w
        counts = nxt
    n = sum(magnitudes.values())
    extreme = sum(ways for pos, ways in enumerate(counts) if abs(pos - offset) >= abs(observed))
    return min(1.0, extreme / 2**n)


def sign_flip_mean(differences: Sequence[float], *, resamples: int = 20000,
                   seed: int = 0) -> float:
    """Two-sided paired sign-flip p-value for real-valued per-unit differences (mean
    statistic): exact over all 2^n sign assignments up to n = 16, else ``resamples`` random ones
    (with the observed assignment counted, so p > 0)."""
    d = np.asarray([float(x) for x in differences], dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    tol = 1e-12 * max(1.0, observed)
    if d.size <= 16:
        signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(resamples, d.size))
    extreme = int(np.sum(np.abs(signs @ d) >= observed - tol))
    return float((extreme + 1) / (resamples + 1))


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise adjusted p-values: ``holm`` (step-down), ``bonferroni`` or ``none``."""
    m = len(pvalues)
    if method == "none" or m == 0:
        return [float(p) for p in pvalues]
    if method == "bonferroni":
        return [min(1.0, m * float(p)) for p in pvalues]
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}")
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted
