"""Accuracy shifts of a probe against the clean condition, on the same pairs.

Differences are in percentage points (probe minus clean). The set-accuracy difference gets a
paired bootstrap 95% CI (pairs resampled jointly) and an exact McNemar p-value on pair
correctness (both answers right). ``flip_rate`` is the share of image answers whose choice, in
the pair's original labels, differs from the clean answer. Per category, pairs that carry the
category (in ``category_1 + category_2``) form the paired sample. Pure numbers, no model.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from robustness.data.types import Pair
from robustness.metrics import ChoiceMap, Metrics, ScoreReport
from robustness.stats import DEFAULT_RESAMPLES, mcnemar_exact, paired_bootstrap_diff_ci

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
                  seed: int, resamples: int) -> tuple[list[float], float]:
    a = [clean.outcomes[pid].both_correct for pid in pair_ids]
    b = [probe.outcomes[pid].both_correct for pid in pair_ids]
    ci = paired_bootstrap_diff_ci(a, b, resamples=resamples, seed=seed)
    return [ci[0], ci[1]], mcnemar_exact(a, b)


def shift(clean_metrics: Metrics, probe_metrics: Metrics, pair_ids: Sequence[str],
          clean: ScoreReport, probe: ScoreReport, clean_choices: ChoiceMap,
          probe_choices: ChoiceMap, *, seed: int = 0,
          resamples: int = DEFAULT_RESAMPLES) -> dict[str, Any]:
    """The contract's shift object ``S`` for one row (overall or one category)."""
    ci, p = _paired_stats(pair_ids, clean, probe, seed=seed, resamples=resamples)
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
                   resamples: int = DEFAULT_RESAMPLES) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Overall shift and per-category shifts of ``probe`` against ``clean`` on ``pairs``.

    Both reports must score exactly ``pairs`` (the clean pairs; a probe may change a pair's
    gold answers but not which pairs are asked).
    """
    ids = [p.pair_id for p in pairs]
    missing = [pid for pid in ids if pid not in clean.outcomes or pid not in probe.outcomes]
    if missing:
        raise ValueError(f"shift needs the same pairs in both conditions; missing {missing[:3]}")
    overall = shift(clean.overall, probe.overall, ids, clean, probe, clean_choices,
                    probe_choices, seed=seed, resamples=resamples)
    per_category: dict[str, dict[str, Any]] = {}
    members = _category_members(pairs)
    for cat, cat_ids in members.items():
        if cat not in clean.per_category or cat not in probe.per_category:
            continue
        per_category[cat] = shift(clean.per_category[cat], probe.per_category[cat], cat_ids,
                                  clean, probe, clean_choices, probe_choices, seed=seed,
                                  resamples=resamples)
    return overall, per_category


def _category_members(pairs: Sequence[Pair]) -> Mapping[str, list[str]]:
    members: dict[str, list[str]] = {}
    for pair in pairs:
        for cat in dict.fromkeys(pair.pair_categories):
            members.setdefault(cat, []).append(pair.pair_id)
    return members
