"""Compare a candidate run with a baseline on the same pairs and decide a verdict.

For every compared condition the gate builds per-pair outcomes (both right, right answers,
invalid answers, validity, confusion) for both runs, then one check per configured metric:

* level: the metric in the candidate minus the baseline (percentage points), a paired bootstrap
  CI over pairs and an exact paired test (McNemar for 0/1 outcomes, sign-flip otherwise);
* shift (probes): the change of the probe's shift, ``(cand probe − cand clean) − (base probe −
  base clean)``: negative set-accuracy values mean the candidate loses more under the probe;
* per category: the same on the pairs of each category, with the official weighting;
* probe metrics, image by image: ``option_swap/order_consistency`` (the same option content in
  both orders; exact McNemar), ``option_swap/position_bias`` (|% answers at displayed A − 50|;
  paired bootstrap over pairs) and ``<condition>/flip_rate`` (answers changed against clean;
  exact McNemar) — pure position bias leaves set accuracy intact and shows only here.

Runs that do not describe the same experiment (benchmark, pairs, mode, seed, probe settings)
raise :class:`UserError` (exit 2): a mismatch is not a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np

from robustness.data.types import Benchmark, Choice, OptionLabel, pair_clusters
from robustness.errors import UserError
from robustness.gate.inputs import (CLEAN, ConditionPredictions, RunInput, find_benchmark,
                                    load_condition, open_input)
from robustness.gate.rules import (LEVEL_METRICS, PROBE_METRICS, SHIFT_METRICS, GateRules,
                                   MetricRule)
from robustness.gate.saliency import saliency_check
from robustness.metrics import PairOutcome, pair_outcome
from robustness.stats import (adjust_pvalues, bootstrap_contrast_ci, clustered,
                              clustered_sign_flip, mcnemar_exact, sign_flip_exact)

BINARY_METRICS = ("set_accuracy", "confusion")  # 0/1 per pair: exact McNemar


@dataclass
class Check:
    """One comparison: values, uncertainty, the rule applied and its outcome."""

    name: str
    condition: str
    metric: str
    category: str | None
    kind: str  # "level" or "shift"
    higher_is_better: bool
    margin: float
    gating: bool
    baseline: float | None
    candidate: float | None
    delta: float | None
    ci: tuple[float | None, float | None]
    p: float | None
    n_pairs: int
    p_adjusted: float | None = None
    status: str = "pass"
    reason: str = ""
    unit: str = "pp"  # of delta and margin: percentage points, or "" (a ratio's own units)

    @property
    def worse_by(self) -> float | None:
        """How far the candidate is worse (points, positive = worse), or None if undefined."""
        if self.delta is None:
            return None
        return -self.delta if self.higher_is_better else self.delta

    def as_dict(self) -> dict[str, Any]:
        """The contract's check object plus extra keys (category, kind, margin, ...)."""
        return {
            "name": self.name,
            "condition": self.condition,
            "metric": self.metric,
            "baseline": _round(self.baseline),
            "candidate": _round(self.candidate),
            "delta": _round(self.delta),
            "ci": [_round(v) for v in self.ci],
            "p": self.p,
            "status": self.status,
            "category": self.category,
            "kind": self.kind,
            "p_adjusted": self.p_adjusted,
            "margin": self.margin,
            "gating": self.gating,
            "higher_is_better": self.higher_is_better,
            "n_pairs": self.n_pairs,
            "reason": self.reason,
            "unit": self.unit,
        }


def _round(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 2) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass
class GateResult:
    """The verdict and every check, with what was compared."""

    checks: list[Check]
    baseline: RunInput
    candidate: RunInput
    rules: GateRules
    benchmark: dict[str, Any]
    conditions: list[str]
    n_pairs: int
    notes: list[str] = field(default_factory=list)
    uncertainty: dict[str, Any] = field(default_factory=dict)  # {"method", "clusters"}

    @property
    def verdict(self) -> str:
        return "fail" if any(c.status == "fail" for c in self.checks) else "pass"

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == "fail" else 0

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": [c.as_dict() for c in self.checks],
            "counts": {s: self.count(s) for s in ("pass", "warn", "fail")},
            "baseline": self.baseline.describe(),
            "candidate": self.candidate.describe(),
            "benchmark": self.benchmark,
            "conditions": self.conditions,
            "n_pairs": self.n_pairs,
            "uncertainty": self.uncertainty,
            "rules": {"alpha": self.rules.alpha, "correction": self.rules.correction,
                      "source": self.rules.source, "ci_level": self.rules.ci_level,
                      "resamples": self.rules.resamples, "seed": self.rules.seed},
            "notes": self.notes,
        }


# ---------------------------------------------------------------- mismatches (exit 2)

def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = sorted(set(a) | set(b))
    parts = [f"{k}: {_canonical(a.get(k, '<absent>'))} vs {_canonical(b.get(k, '<absent>'))}"
             for k in keys if _canonical(a.get(k)) != _canonical(b.get(k))]
    return "; ".join(parts)


def compared_conditions(base: RunInput, cand: RunInput, rules: GateRules,
                        notes: list[str]) -> list[str]:
    """Check the two runs describe the same experiment; return the condition names to compare."""
    if base.benchmark_hash and cand.benchmark_hash and base.benchmark_hash != cand.benchmark_hash:
        raise UserError(
            f"runs used different benchmarks: baseline {base.benchmark_name or '?'} "
            f"(sha256 {base.benchmark_hash[:12]}) vs candidate {cand.benchmark_name or '?'} "
            f"(sha256 {cand.benchmark_hash[:12]})")
    if base.mode and cand.mode and base.mode != cand.mode:
        raise UserError(f"runs used different answering modes: baseline {base.mode}, "
                        f"candidate {cand.mode}")
    if base.prompt and cand.prompt and base.prompt != cand.prompt:
        raise UserError(f"runs used different prompting strategies: baseline {base.prompt}, "
                        f"candidate {cand.prompt}")
    if base.seed is not None and cand.seed is not None and base.seed != cand.seed:
        raise UserError(f"runs used different seeds (probe perturbations differ): baseline "
                        f"{base.seed}, candidate {cand.seed}")
    single = [r for r in (base, cand) if r.kind != "run"]
    if rules.conditions is not None:
        wanted = list(rules.conditions)
        for run, side in ((base, "baseline"), (cand, "candidate")):
            missing = [c for c in wanted if c not in run.probes]
            if missing:
                raise UserError(f"{side} {run.summary_path} has no condition {', '.join(missing)} "
                                "(named in the gate config's 'conditions')")
    elif single:
        wanted = [CLEAN]
        extra = sorted((set(base.probes) | set(cand.probes)) - {CLEAN})
        if extra:
            notes.append(f"{single[0].path} holds one clean condition: comparing clean only "
                         f"(not {', '.join(extra)})")
    else:
        only_base = [c for c in base.probes if c not in cand.probes]
        only_cand = [c for c in cand.probes if c not in base.probes]
        if only_base or only_cand:
            raise UserError(
                "runs have different conditions: only in baseline: "
                f"{', '.join(only_base) or '-'}; only in candidate: {', '.join(only_cand) or '-'} "
                "(list the shared ones under 'conditions' in the gate config to compare those)")
        wanted = [CLEAN] + [c for c in base.probes if c != CLEAN]
    for name in wanted:
        pb, pc = base.probes.get(name), cand.probes.get(name)
        if pb is None or pc is None:  # clean, or a file input without probe records
            continue
        if _canonical(pb) != _canonical(pc):
            if pb["name"] != pc["name"]:
                detail = f"probe {pb['name']} vs {pc['name']}"
            else:
                detail = f"{pb['name']} params {_differences(pb['params'], pc['params'])}"
            raise UserError(f"condition '{name}': probe settings differ (baseline vs candidate): "
                            f"{detail}")
    if CLEAN not in wanted:
        wanted.insert(0, CLEAN)  # shifts are measured against clean
    return wanted


def _gold(cond: ConditionPredictions, bench: Benchmark | None, notes: Sequence[str]
          ) -> dict[str, tuple[OptionLabel, OptionLabel]]:
    """Gold labels per pair: the records' ``correct`` field, else the benchmark's annotation."""
    if cond.gold:
        return {pid: (cond.gold[(pid, 1)], cond.gold[(pid, 2)]) for pid in cond.pair_ids}
    if bench is None:
        tried = f" ({'; '.join(notes)})" if notes else ""
        raise UserError(f"{cond.source}: records have no field 'correct' and the benchmark was not "
                        f"found{tried}; pass --annotations DATASET_JSON")
    return {pid: bench.pair(pid).correct for pid in cond.pair_ids}


def _check_clean_gold(cond: ConditionPredictions, bench: Benchmark) -> None:
    """Unperturbed records must carry the annotation's answers (else: a different benchmark)."""
    for (pair_id, image), label in cond.gold.items():
        truth = bench.pair(pair_id).correct[image - 1]
        if label != truth:
            raise UserError(f"{cond.source}: pair {pair_id} image {image}: field 'correct' is "
                            f"{label} but {bench.source} says {truth}")


def _check_same_pairs(name: str, base: ConditionPredictions, cand: ConditionPredictions) -> None:
    b, c = set(base.pair_ids), set(cand.pair_ids)
    if b != c:
        only_b, only_c = sorted(b - c), sorted(c - b)

        def show(ids: list[str]) -> str:
            return f"{len(ids)}" + (f" ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
                                    if ids else "")
        raise UserError(f"condition '{name}': pair sets differ: {show(only_b)} only in baseline "
                        f"{base.source}, {show(only_c)} only in candidate {cand.source}")


def _check_same_gold(name: str, gb: Mapping[str, tuple], gc: Mapping[str, tuple]) -> None:
    for pid, labels in gb.items():
        if gc[pid] != labels:
            image = 1 if gc[pid][0] != labels[0] else 2
            raise UserError(f"condition '{name}': gold answers differ for pair {pid} image {image} "
                            f"(baseline {labels[image - 1]}, candidate {gc[pid][image - 1]}): "
                            "the runs did not ask the same questions")


# ---------------------------------------------------------------- per-pair samples

@dataclass(frozen=True)
class PairStats:
    """Per-pair integer outcomes of one run in one condition, aligned with ``pair_ids``."""

    pair_ids: tuple[str, ...]
    both: np.ndarray
    n_correct: np.ndarray
    n_invalid: np.ndarray
    valid: np.ndarray
    confused: np.ndarray

    @classmethod
    def build(cls, pair_ids: Sequence[str], outcomes: Mapping[str, PairOutcome]) -> "PairStats":
        rows = [outcomes[p] for p in pair_ids]
        return cls(
            pair_ids=tuple(pair_ids),
            both=np.array([o.both_correct for o in rows], dtype=int),
            n_correct=np.array([sum(o.correct) for o in rows], dtype=int),
            n_invalid=np.array([sum(o.invalid) for o in rows], dtype=int),
            valid=np.array([o.valid for o in rows], dtype=int),
            confused=np.array([o.confused for o in rows], dtype=int),
        )


@dataclass(frozen=True)
class MetricSample:
    """A percentage metric as per-pair ratio terms: value = 100·Σnum / Σden.

    ``x`` is the per-pair integer outcome tested for significance and ``mask`` the pairs where
    it is defined (e.g. confusion only on valid pairs); ``weight`` carries category multiplicity.
    """

    num: np.ndarray
    den: np.ndarray
    x: np.ndarray
    mask: np.ndarray

    @property
    def value(self) -> float | None:
        total = self.den.sum()
        return float(100.0 * self.num.sum() / total) if total > 0 else None


def metric_sample(stats: PairStats, metric: str, weight: np.ndarray) -> MetricSample:
    """The ratio terms of ``metric`` with per-pair ``weight`` (1, or a category's count)."""
    w = weight.astype(float)
    present = weight > 0
    if metric == "set_accuracy":
        return MetricSample(stats.both * w, w, stats.both, present)
    if metric == "individual_accuracy":
        return MetricSample(stats.n_correct * w, 2 * w, stats.n_correct, present)
    if metric == "invalid_rate":
        return MetricSample(stats.n_invalid * w, 2 * w, stats.n_invalid, present)
    if metric == "confusion":
        valid = stats.valid * w
        return MetricSample(stats.confused * valid, valid, stats.confused,
                            present & (stats.valid == 1))
    raise ValueError(f"unknown metric {metric!r}")


def _outcome(gold: tuple[OptionLabel, OptionLabel], c1: Choice, c2: Choice) -> PairOutcome:
    """Score one pair against this condition's gold labels with the official rules.

    A probe may change the truth (swapped images), so the gold comes from the records, not the
    annotation; ``pair_outcome`` reads nothing of the pair but ``correct``.
    """
    return pair_outcome(SimpleNamespace(correct=gold), c1, c2)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the comparison

class _Comparison:
    """Holds both runs' per-pair outcomes for every condition and builds the checks."""

    def __init__(self, rules: GateRules, bench: Benchmark | None, order: list[str],
                 outcomes: dict[tuple[str, str], dict[str, PairOutcome]],
                 choices: dict[tuple[str, str], Mapping[tuple[str, int], Choice]]):
        self.rules = rules
        self.bench = bench
        self.order = order  # pair ids in benchmark (or first-seen) order
        self.outcomes = outcomes  # (side, condition) -> pair id -> outcome
        self.choices = choices  # (side, condition) -> (pair id, image) -> original label
        self.cluster_of: dict[str, int] | None = None  # pair id -> cluster of shared images
        # pair probes: condition -> the original image shown in slots 1 and 2
        self.sources: dict[str, tuple[int, int]] = {}
        if bench is not None and rules.uncertainty == "clustered":
            ids = [p for p in order if p in bench]
            labels = pair_clusters([bench.pair(p) for p in ids])
            if clustered(labels) is not None:
                self.cluster_of = dict(zip(ids, labels))

    def clusters(self, pair_ids: list[str]) -> np.ndarray | None:
        """Cluster indices aligned with ``pair_ids`` (None: pairs are the units)."""
        if self.cluster_of is None:
            return None
        return np.array([self.cluster_of[p] for p in pair_ids])

    def uncertainty(self) -> dict[str, Any]:
        ids = self.pairs(CLEAN) if ("baseline", CLEAN) in self.outcomes else self.order
        groups = self.clusters(ids)
        if groups is None or clustered(groups) is None:
            return {"method": "pairs", "clusters": len(ids)}
        return {"method": "clustered", "clusters": int(np.unique(groups).size)}

    def _test(self, differences: np.ndarray, groups: np.ndarray | None) -> float:
        """Exact sign-flip test of integer per-pair differences, over clusters when given."""
        return clustered_sign_flip([int(x) for x in differences],
                                   None if groups is None else groups.tolist())

    def pairs(self, *conditions: str) -> list[str]:
        present = [set(self.outcomes[("baseline", c)]) for c in conditions]
        common = set.intersection(*present)
        return [p for p in self.order if p in common]

    def stats(self, side: str, condition: str, pair_ids: list[str]) -> PairStats:
        return PairStats.build(pair_ids, self.outcomes[(side, condition)])

    def weights(self, pair_ids: list[str], category: str | None) -> np.ndarray:
        if category is None:
            return np.ones(len(pair_ids), dtype=int)
        assert self.bench is not None
        return np.array([self.bench.pair(p).pair_categories.count(category) for p in pair_ids])

    def categories(self, pair_ids: list[str]) -> list[str]:
        if self.bench is None:
            return []
        wanted = set(pair_ids)
        present = {c for p in self.bench if p.pair_id in wanted for c in p.pair_categories}
        return [c for c in self.bench.categories if c in present]

    def _ci(self, terms: list[tuple[float, MetricSample]], keep: np.ndarray,
            groups: np.ndarray | None = None) -> tuple:
        lo, hi = bootstrap_contrast_ci([(coef, s.num[keep], s.den[keep]) for coef, s in terms],
                                       resamples=self.rules.resamples, seed=self.rules.seed,
                                       level=self.rules.ci_level,
                                       clusters=None if groups is None else groups[keep])
        return (lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)

    def level(self, condition: str, metric: str, rule: MetricRule,
              category: str | None = None) -> Check:
        ids = self.pairs(condition)
        weight = self.weights(ids, category)
        keep = weight > 0
        b = metric_sample(self.stats("baseline", condition, ids), metric, weight)
        c = metric_sample(self.stats("candidate", condition, ids), metric, weight)
        both = b.mask & c.mask
        groups = self.clusters(ids)
        if groups is not None:  # pairs sharing an image flip together
            p = self._test(((c.x - b.x) * weight)[both], groups[both])
        elif metric in BINARY_METRICS and not (weight > 1).any():
            p = mcnemar_exact(b.x[both].astype(bool).tolist(), c.x[both].astype(bool).tolist())
        else:  # the same occurrence-weighted quantity the value and the CI describe
            p = sign_flip_exact(((c.x[both] - b.x[both]) * weight[both]).tolist())
        delta = None if b.value is None or c.value is None else c.value - b.value
        name = f"{condition}/{metric}" + (f"/{category}" if category else "")
        return Check(name, condition, metric, category, "level", LEVEL_METRICS[metric],
                     rule.margin, rule.gate, b.value, c.value, delta,
                     self._ci([(1.0, c), (-1.0, b)], keep, groups), p if both.any() else None,
                     int(keep.sum()))

    def shift(self, condition: str, metric: str, rule: MetricRule,
              category: str | None = None) -> Check:
        base_metric = SHIFT_METRICS[metric]
        ids = self.pairs(CLEAN, condition)
        weight = self.weights(ids, category)
        keep = weight > 0
        samples = {(side, cond): metric_sample(self.stats(side, cond, ids), base_metric, weight)
                   for side in ("baseline", "candidate") for cond in (CLEAN, condition)}
        values = {k: s.value for k, s in samples.items()}

        def shift_of(side: str) -> float | None:
            probe, clean = values[(side, condition)], values[(side, CLEAN)]
            return None if probe is None or clean is None else probe - clean

        sb, sc = shift_of("baseline"), shift_of("candidate")
        defined = np.logical_and.reduce([s.mask for s in samples.values()])
        d = ((samples[("candidate", condition)].x - samples[("candidate", CLEAN)].x)
             - (samples[("baseline", condition)].x - samples[("baseline", CLEAN)].x)) * weight
        groups = self.clusters(ids)
        p = self._test(d[defined], None if groups is None else groups[defined]) \
            if defined.any() else None
        terms = [(1.0, samples[("candidate", condition)]), (-1.0, samples[("candidate", CLEAN)]),
                 (-1.0, samples[("baseline", condition)]), (1.0, samples[("baseline", CLEAN)])]
        delta = None if sb is None or sc is None else sc - sb
        name = f"{condition}/{metric}" + (f"/{category}" if category else "")
        return Check(name, condition, metric, category, "shift", LEVEL_METRICS[base_metric],
                     rule.margin, rule.gate, sb, sc, delta, self._ci(terms, keep, groups), p,
                     int(keep.sum()))

    def _images(self, side: str, condition: str, ids: list[str]) -> tuple[list[Choice], ...]:
        """Per image (pairs in order, images 1 and 2): the clean and the probed choice."""
        clean, probed = self.choices[(side, CLEAN)], self.choices[(side, condition)]
        keys = [(p, i) for p in ids for i in (1, 2)]
        return [clean[k] for k in keys], [probed[k] for k in keys]

    def image_values(self, side: str, condition: str, metric: str,
                     ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per image, a 0/1 outcome and whether it counts (aligned with ``ids`` x 2)."""
        clean, probed = self._images(side, condition, ids)
        valid = np.array([c is not None and p is not None for c, p in zip(clean, probed)])
        if metric == "order_consistency":
            return np.array([c == p for c, p in zip(clean, probed)]) & valid, valid
        if metric == "flip_rate":
            return np.array([c != p for c, p in zip(clean, probed)]), np.ones(len(clean), bool)
        if metric == "answer_follows_image":  # slot k's answer = clean answer of its image
            clean_all = self.choices[(side, CLEAN)]
            source = self.sources[condition]
            followed = [clean_all[(p, source[i - 1])] for p in ids for i in (1, 2)]
            valid = np.array([f is not None and q is not None for f, q in zip(followed, probed)])
            return np.array([f == q for f, q in zip(followed, probed)]) & valid, valid
        if metric == "attack_success_rate":  # broken: right on clean, wrong under the attack
            right = [r for p in ids for r in self.outcomes[(side, CLEAN)][p].correct]
            after = [r for p in ids for r in self.outcomes[(side, condition)][p].correct]
            return np.array([a and not b for a, b in zip(right, after)]), np.array(right)
        # position_bias: displayed A clean (original A) and swapped (original B), per image
        at_a = np.array([(c == "A") + (p == "B") for c, p in zip(clean, probed)], dtype=float)
        counted = np.array([(c is not None) + (p is not None) for c, p in zip(clean, probed)],
                           dtype=float)
        return at_a, counted

    def probe_metric(self, condition: str, metric: str, rule: MetricRule) -> Check:
        """A per-image probe metric compared between the runs on the same images."""
        ids = self.pairs(CLEAN, condition)
        data = {side: self.image_values(side, condition, metric, ids)
                for side in ("baseline", "candidate")}

        def value(x: np.ndarray, n: np.ndarray, rows: np.ndarray | None = None) -> float | None:
            if rows is not None:
                x, n = x.reshape(-1, 2)[rows].ravel(), n.reshape(-1, 2)[rows].ravel()
            total = float(n.sum())
            if total == 0:
                return None
            share = 100.0 * float(x.sum()) / total
            return abs(share - 50.0) if metric == "position_bias" else share

        b, c = (value(*data[s]) for s in ("baseline", "candidate"))
        delta = None if b is None or c is None else c - b
        rng = np.random.default_rng(self.rules.seed)
        groups = self.clusters(ids)
        members = ([np.flatnonzero(groups == g) for g in np.unique(groups)]
                   if groups is not None else None)
        draws = []
        for _ in range(self.rules.resamples if ids else 0):
            if members is None:
                rows = rng.integers(0, len(ids), len(ids))
            else:  # whole clusters of pairs that share an image
                rows = np.concatenate([members[k] for k in
                                       rng.integers(0, len(members), len(members))])
            vb, vc = value(*data["baseline"], rows), value(*data["candidate"], rows)
            if vb is not None and vc is not None:
                draws.append(vc - vb)
        ci: tuple[float | None, float | None] = (None, None)
        p: float | None = None
        if draws:
            tail = (1 - self.rules.ci_level) / 2
            ci = (float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)))
        if metric == "position_bias":
            if draws and delta is not None:
                arr = np.asarray(draws)
                tail_share = max(min((arr <= 0).mean(), (arr >= 0).mean()), 1 / (len(arr) + 1))
                p = float(min(1.0, 2 * tail_share))
        else:
            both = (data["baseline"][1] & data["candidate"][1]
                    if metric in ("order_consistency", "attack_success_rate",
                                  "answer_follows_image")
                    else np.ones(2 * len(ids), bool))
            if both.any() and groups is not None:
                per_image = (data["candidate"][0].astype(int)
                             - data["baseline"][0].astype(int)) * both
                p = self._test(per_image.reshape(-1, 2).sum(axis=1), groups)
            elif both.any():
                p = mcnemar_exact(data["baseline"][0][both].astype(bool).tolist(),
                                  data["candidate"][0][both].astype(bool).tolist())
        return Check(f"{condition}/{metric}", condition, metric, None, "probe",
                     PROBE_METRICS[metric], rule.margin, rule.gate, b, c, delta, ci, p,
                     len(ids))

    def check(self, condition: str, metric: str, rule: MetricRule,
              category: str | None = None) -> Check:
        if metric in SHIFT_METRICS:
            return self.shift(condition, metric, rule, category)
        return self.level(condition, metric, rule, category)


def _fmt_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def decide(checks: list[Check], rules: GateRules) -> None:
    """Adjust the gating checks' p-values for multiplicity and set every check's status."""
    family = [c for c in checks if c.gating and c.p is not None]
    for check, adjusted in zip(family, adjust_pvalues([c.p for c in family], rules.correction)):
        check.p_adjusted = adjusted
    for check in checks:
        worse = check.worse_by
        u = f" {check.unit}" if check.unit else ""
        if worse is None:
            check.status, check.reason = "warn", "not computable (no valid pairs on one side)"
            continue
        what = (f"hurt {worse:.2f}{u} more by the probe" if check.kind == "shift"
                else f"worse by {worse:.2f}{u}")
        if worse <= check.margin:
            check.status = "pass"
            check.reason = (f"within margin {check.margin:g}{u}" if worse > 0
                            else "no worse than baseline")
        elif not check.gating:  # reported only: flag it when it would have failed on its own
            significant = check.p is not None and check.p < rules.alpha
            check.status = "warn" if significant else "pass"
            check.reason = (f"{what} > margin {check.margin:g}{u}, "
                            f"{'significant' if significant else 'not significant'} "
                            f"(p {_fmt_p(check.p)}, uncorrected); reported only")
        elif check.p_adjusted is not None and check.p_adjusted < rules.alpha:
            check.status = "fail"
            check.reason = (f"{what} > margin {check.margin:g}{u}, significant "
                            f"(p adj {check.p_adjusted:.3g} < {rules.alpha:g})")
        else:
            check.status = "warn"
            check.reason = (f"{what} > margin {check.margin:g}{u} but not significant "
                            f"(p adj {_fmt_p(check.p_adjusted)} >= {rules.alpha:g})")


def slot_sources(params: Mapping[str, Any]) -> tuple[int, int] | None:
    """The original image each slot shows under a pair probe, from its recorded params:
    ``slots`` (swap_images: [2, 1]) or an integer ``source`` (same_image: both slots show it)."""
    slots, source = params.get("slots"), params.get("source")
    if (isinstance(slots, list) and len(slots) == 2
            and all(isinstance(v, int) and v in (1, 2) for v in slots)):
        return (slots[0], slots[1])
    if isinstance(source, int) and not isinstance(source, bool) and source in (1, 2):
        return (source, source)
    return None


def _applies(metric: str, condition: str, attacks: set[str],
             pair_probes: Mapping[str, tuple[int, int]]) -> bool:
    """Order consistency and position bias belong to option swaps, attack success to attack
    conditions (their probe has a budget ``eps``), answer_follows_image to pair probes that
    move images between slots, flip rates to every probe."""
    if metric in ("order_consistency", "position_bias"):
        return condition.startswith("option_swap")
    if metric == "attack_success_rate":
        return condition in attacks
    if metric == "answer_follows_image":
        return condition in pair_probes
    return True


def _build_checks(comp: _Comparison, conditions: list[str], rules: GateRules,
                  notes: list[str], attacks: set[str]) -> list[Check]:
    checks: list[Check] = []
    probes = [c for c in conditions if c != CLEAN]
    for metric, rule in rules.clean.items():
        checks.append(comp.check(CLEAN, metric, rule))
    for condition in probes:
        for metric, rule in rules.probes.items():
            checks.append(comp.check(condition, metric, rule))
        for metric, rule in rules.probe_metrics.items():
            if _applies(metric, condition, attacks, comp.sources):
                checks.append(comp.probe_metric(condition, metric, rule))
    cat_rules = rules.per_category
    if cat_rules.metrics:
        targets = conditions if cat_rules.conditions is None else [
            c for c in cat_rules.conditions if c in conditions]
        if comp.bench is None:
            if any(r.gate for r in cat_rules.metrics.values()):
                raise UserError("per-category gating needs the benchmark's categories, and the "
                                "benchmark was not found: pass --annotations DATASET_JSON")
            notes.append("per-category checks skipped: benchmark not found (pass --annotations)")
            return checks
        for condition in targets:
            for metric, rule in cat_rules.metrics.items():
                if metric in SHIFT_METRICS and condition == CLEAN:
                    continue
                pair_ids = comp.pairs(condition) if metric not in SHIFT_METRICS else comp.pairs(
                    CLEAN, condition)
                for category in comp.categories(pair_ids):
                    checks.append(comp.check(condition, metric, rule, category))
    return checks


def compare_runs(baseline: str | Path, candidate: str | Path, *, rules: GateRules | None = None,
                 annotations: str | Path | None = None, threshold: float = 3.0) -> GateResult:
    """Run the gate: read both sides, refuse mismatches, compute checks and the verdict."""
    rules = rules or GateRules()
    notes: list[str] = []
    base, cand = open_input(baseline), open_input(candidate)
    conditions = compared_conditions(base, cand, rules, notes)
    for run in (base, cand):
        if run.kind == "official" and annotations is None:
            raise UserError(f"{run.path}: official results files carry no gold answers: "
                            "pass --annotations DATASET_JSON")
    bench, bench_notes = find_benchmark([base, cand], annotations)
    if bench is not None:
        for run in (base, cand):
            if run.benchmark_hash is None:
                run.benchmark_hash = bench.content_hash
                run.benchmark_name = run.benchmark_name or bench.name
    known = {p.pair_id for p in bench} if bench is not None else None
    outcomes: dict[tuple[str, str], dict[str, PairOutcome]] = {}
    choices: dict[tuple[str, str], Mapping[tuple[str, int], Choice]] = {}
    order: list[str] = []
    for name in conditions:
        preds = {side: load_condition(run, name, known_pairs=known, threshold=threshold)
                 for side, run in (("baseline", base), ("candidate", cand))}
        _check_same_pairs(name, preds["baseline"], preds["candidate"])
        gold = {side: _gold(p, bench, bench_notes) for side, p in preds.items()}
        if name == CLEAN and bench is not None:
            for p in preds.values():
                _check_clean_gold(p, bench)
        _check_same_gold(name, gold["baseline"], gold["candidate"])
        for side, p in preds.items():
            choices[(side, name)] = p.choices
            outcomes[(side, name)] = {
                pid: _outcome(gold[side][pid], p.choices[(pid, 1)], p.choices[(pid, 2)])
                for pid in p.pair_ids}
        seen = set(order)
        order.extend(pid for pid in preds["baseline"].pair_ids if pid not in seen)
    if bench is not None:
        seen = set(order)
        order = [p.pair_id for p in bench if p.pair_id in seen]
    comp = _Comparison(rules, bench, order, outcomes, choices)
    attacks = {name for name in conditions
               if "eps" in ((base.probes.get(name) or {}).get("params") or {})}
    for name in conditions:
        slots = slot_sources((base.probes.get(name) or {}).get("params") or {})
        if name != CLEAN and slots is not None:
            comp.sources[name] = slots
    checks = _build_checks(comp, conditions, rules, notes, attacks)
    for metric, rule in rules.saliency.items():
        check = saliency_check(base, cand, metric, rule, rules, notes)
        if check is not None:
            checks.append(check)
    decide(checks, rules)
    recorded_name = base.benchmark_name or cand.benchmark_name
    benchmark = {"name": recorded_name or (bench.name if bench else None),
                 "content_hash": base.benchmark_hash or cand.benchmark_hash,
                 "path": str(bench.source) if bench and bench.source else None}
    return GateResult(checks=checks, baseline=base, candidate=cand, rules=rules,
                      benchmark=benchmark, conditions=conditions,
                      n_pairs=len(comp.pairs(CLEAN)), notes=notes,
                      uncertainty=comp.uncertainty())
