"""The gate's saliency check: grounding of the images both runs explained.

``saliency/mask_energy_ratio`` compares the mask energy ratio image by image over the abnormal
images that both runs explained with the same method and settings (``saliency/images.json``):
the mean difference, a bootstrap interval over pairs (an image's two maps are not independent
of its partner's) and a paired sign-flip test on per-pair mean differences.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from robustness.data.text_files import read_text
from robustness.errors import UserError
from robustness.gate.inputs import RunInput
from robustness.gate.rules import SALIENCY_METRICS, GateRules, MetricRule
from robustness.stats import sign_flip_mean

CONDITION = "saliency"


def _explained(run: RunInput, metric: str) -> tuple[dict[tuple[str, int], float], Any]:
    """(pair id, image) -> the metric for every image the run explained, and its method."""
    if run.kind != "run":
        return {}, None
    path = run.path / "saliency" / "images.json"
    if not path.is_file():
        return {}, None
    try:
        record = json.loads(read_text(path))
        rows = record["images"]
        values = {(str(r["pair_id"]), int(r["image"])): float(r[metric])
                  for r in rows if r.get(metric) is not None}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{path}: images: not a saliency record ({err.__class__.__name__}: "
                        f"{err})") from None
    method = {k: record.get(k) for k in ("method", "settings", "sign")}
    return values, method


def saliency_values(base: RunInput, cand: RunInput, metric: str,
                    notes: list[str]) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    """The images both runs explained alike, and each run's metric on them."""
    (b, method_b), (c, method_c) = _explained(base, metric), _explained(cand, metric)
    if not b or not c:
        if b or c:
            notes.append(f"{CONDITION}/{metric} skipped: only one run explained images")
        return [], np.zeros(0), np.zeros(0)
    if method_b != method_c:
        notes.append(f"{CONDITION}/{metric} skipped: the runs explained with different methods "
                     "or settings")
        return [], np.zeros(0), np.zeros(0)
    common = sorted(set(b) & set(c))
    if not common:
        notes.append(f"{CONDITION}/{metric} skipped: the runs explained no common images")
    return common, np.array([b[k] for k in common]), np.array([c[k] for k in common])


def saliency_check(base: RunInput, cand: RunInput, metric: str, rule: MetricRule,
                   rules: GateRules, notes: list[str]):
    """The check of one saliency metric, or None when the runs share no explained images."""
    from robustness.gate.comparison import Check

    keys, xb, xc = saliency_values(base, cand, metric, notes)
    if not keys:
        return None
    pairs = sorted({k[0] for k in keys})
    index = {p: i for i, p in enumerate(pairs)}
    group = np.array([index[k[0]] for k in keys])
    diff = xc - xb
    members = [np.flatnonzero(group == g) for g in range(len(pairs))]
    per_pair = np.array([diff[rows].mean() for rows in members])
    rng = np.random.default_rng(rules.seed)
    draws = []
    for _ in range(rules.resamples):  # resample whole pairs
        rows = np.concatenate([members[g] for g in rng.integers(0, len(pairs), len(pairs))])
        draws.append(xc[rows].mean() - xb[rows].mean())
    tail = (1 - rules.ci_level) / 2
    ci = (float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)))
    p = sign_flip_mean(per_pair.tolist(), resamples=rules.resamples, seed=rules.seed)
    return Check(f"{CONDITION}/{metric}", CONDITION, metric, None, "saliency",
                 SALIENCY_METRICS[metric], rule.margin, rule.gate, float(xb.mean()),
                 float(xc.mean()), float(xc.mean() - xb.mean()), ci, p, len(pairs),
                 unit="")
