"""Accuracy shifts of a probe against the clean condition, on the same pairs.

Differences are in percentage points (probe minus clean). The set-accuracy difference gets a
paired bootstrap 95% CI (pairs resampled jointly) and an exact McNemar p-value on pair
correctness (both answers right). ``flip_rate`` is the share of image answers whose choice, in
the pair's original labels, differs from the clean answer. Per category, pairs that carry the
category (in ``category_1 + category_2``) form the paired sample, and the difference, its CI
and its exact test all describe the same occurrence-weighted quantity as the official table (a
pair counts once per occurrence of the category): the CI resamples weighted ratio terms and
the test is the exact sign-flip test on weighted differences (McNemar when every weight is 1).
Pure numbers, no model.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from robustness.data.types import Pair
from robustness.metrics import ChoiceMap, Metrics, ScoreReport
from robustness.stats import (DEFAULT_RESAMPLES, bootstrap_contrast_ci, clustered,
                              clustered_sign_flip, mcnemar_exact, paired_bootstrap_diff_ci)

SHIFT_KEYS = ("set_accuracy", "individual_accuracy", "confusion", "flip_rate",
              "set_accuracy_ci", "mcnemar_p")


def _delta(clean: Metrics, probe: Metrics, name: str) -> float:
    return round(getattr(probe, name) - getattr(clean, name), 2)


def flip_rate(pair_ids: Sequence[str], clean: ChoiceMap, probe: ChoiceMap) -> float:
    """Percent of image answers (original labels) that differ between clean and probe."""
    keys = [(pid, image) for pid in pair_ids for image in (1, 2)]
    if not keys:
        return 0.0
    changed = sum(1 for k in keys if clean[k] != probe[k])
    return round(100.0 * changed / len(keys), 2)


def _paired_stats(pair_ids: Sequence[str], clean: ScoreReport, probe: ScoreReport, *,
                  seed: int, resamples: int, weights: Sequence[int] | None = None,
                  clusters: Sequence[int] | None = None) -> tuple[list[float], float]:
    a = [clean.outcomes[pid].both_correct for pid in pair_ids]
    b = [probe.outcomes[pid].both_correct for pid in pair_ids]
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if weights is None or all(w == 1 for w in weights):
        if clustered(clusters) is None:
            ci = paired_bootstrap_diff_ci(a, b, resamples=resamples, seed=seed)
            return [ci[0], ci[1]], mcnemar_exact(a, b)
        ci = paired_bootstrap_diff_ci(a, b, resamples=resamples, seed=seed, clusters=clusters)
        return [ci[0], ci[1]], clustered_sign_flip([int(x) for x in b_arr - a_arr], clusters)
    w = np.asarray(weights, dtype=float)
    ci = bootstrap_contrast_ci([(1.0, b_arr * w, w), (-1.0, a_arr * w, w)],
                               resamples=resamples, seed=seed, clusters=clusters)
    p = clustered_sign_flip([int(round(x)) for x in (b_arr - a_arr) * w], clusters)
    return [ci[0], ci[1]], p


def shift(clean_metrics: Metrics, probe_metrics: Metrics, pair_ids: Sequence[str],
          clean: ScoreReport, probe: ScoreReport, clean_choices: ChoiceMap,
          probe_choices: ChoiceMap, *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES,
          weights: Sequence[int] | None = None,
          clusters: Sequence[int] | None = None) -> dict[str, Any]:
    """The contract's shift object ``S`` for one row (overall, or one category with each pair's
    occurrence count of it as ``weights``); ``clusters`` make the CI and test respect pairs
    that share an image."""
    ci, p = _paired_stats(pair_ids, clean, probe, seed=seed, resamples=resamples,
                          weights=weights, clusters=clusters)
    return {
        "set_accuracy": _delta(clean_metrics, probe_metrics, "set_accuracy"),
        "individual_accuracy": _delta(clean_metrics, probe_metrics, "individual_accuracy"),
        "confusion": _delta(clean_metrics, probe_metrics, "confusion"),
        "flip_rate": flip_rate(pair_ids, clean_choices, probe_choices),
        "set_accuracy_ci": ci,
        "mcnemar_p": p,
    }


def compute_shifts(pairs: Sequence[Pair], clean: ScoreReport, probe: ScoreReport,
                   clean_choices: ChoiceMap, probe_choices: ChoiceMap, *, seed: int = 0,
                   resamples: int = DEFAULT_RESAMPLES, clusters: Sequence[int] | None = None
                   ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Overall shift and per-category shifts of ``probe`` against ``clean`` on ``pairs``.

    Both reports must score exactly ``pairs`` (the clean pairs; a probe may change a pair's
    gold answers but not which pairs are asked).
    """
    ids = [p.pair_id for p in pairs]
    missing = [pid for pid in ids if pid not in clean.outcomes or pid not in probe.outcomes]
    if missing:
        raise ValueError(f"shift needs the same pairs in both conditions; missing {missing[:3]}")
    overall = shift(clean.overall, probe.overall, ids, clean, probe, clean_choices,
                    probe_choices, seed=seed, resamples=resamples, clusters=clusters)
    cluster_of = dict(zip(ids, clusters)) if clusters is not None else None
    per_category: dict[str, dict[str, Any]] = {}
    members = _category_members(pairs)
    by_id = {p.pair_id: p for p in pairs}
    for cat, cat_ids in members.items():
        if cat not in clean.per_category or cat not in probe.per_category:
            continue
        weights = [by_id[pid].pair_categories.count(cat) for pid in cat_ids]
        per_category[cat] = shift(clean.per_category[cat], probe.per_category[cat], cat_ids,
                                  clean, probe, clean_choices, probe_choices, seed=seed,
                                  resamples=resamples, weights=weights,
                                  clusters=([cluster_of[pid] for pid in cat_ids]
                                            if cluster_of is not None else None))
    return overall, per_category


def _category_members(pairs: Sequence[Pair]) -> Mapping[str, list[str]]:
    members: dict[str, list[str]] = {}
    for pair in pairs:
        for cat in dict.fromkeys(pair.pair_categories):
            members.setdefault(cat, []).append(pair.pair_id)
    return members
