"""Saliency in an experiment: explain a few pairs after the answers, score, draw, log.

:class:`SaliencyRun` is what the ``explain`` config group builds (``conf/explain/*.yaml``); the
runner calls ``explain_run(ctx)`` once every condition is answered and stores the returned dict
as ``summary.json["saliency"]``. For the chosen pairs it computes

1. image attribution maps of the clean answers (the configured method: Integrated Gradients or
   occlusion) for the chosen option's margin (or the correct one's: ``target``);
2. part shares (image, question, each option) by exact Shapley values → ``image_reliance``;
3. grounding on phantom masks (``mask_energy_ratio``, pointing game), overall and per family;
4. rank correlations (Spearman) of the maps between the two images of each pair and between
   clean and every probe condition (same original option explained, same source image);
5. overlays ``saliency/<pair>.png``, all maps ``saliency/maps.npz``, per-image records
   ``saliency/images.json``, logged through the run's tracker as images and tables.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from robustness.data.types import Benchmark, OptionLabel, Pair
from robustness.errors import ConfigError
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode
from robustness.data.query import Answer, Query

from explain.base import ExplainContext, Explainer
from explain.grounding import (Finding, check_sign, finding, mask_energy_ratio, pointing_hit,
                               spearman)
from explain.map_cache import CachedMaps
from explain.methods import ImageExplainer, ImageMap, IntegratedGradients
from explain.overlay import Panel, render_pair
from explain.parts import PartAttribution, PartShapley, ShapleyRecord, mean_shares
from explain.references import ReferencePool
from explain.sanity import (MODEL_FREE_REFERENCES, cascade_stages, model_free_map,
                            pointing_summary, randomised)
from explain.scoring import AnswerScorer, resolve_target

log = logging.getLogger(__name__)

CLEAN = "clean"
SELECTIONS = ("diverse", "first")
Key = tuple[str, int]


def one_level_per_probe(conditions: Sequence[str]) -> list[str]:
    """The middle level of each graded probe (``gaussian_noise@1..5`` → ``@3``), other
    conditions as they are, in run order."""
    levels: dict[str, list[str]] = {}
    for name in conditions:
        levels.setdefault(name.split("@", 1)[0], []).append(name)
    keep = {group[len(group) // 2] for group in levels.values()}
    return [c for c in conditions if c in keep]


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _group(pair: Pair) -> str:
    """A pair's family for diverse selection (phantom family, else its first category)."""
    phantom = pair.extra.get("phantom") if pair.extra else None
    if isinstance(phantom, Mapping) and phantom.get("family"):
        return str(phantom["family"])
    return pair.categories[0][0] if pair.categories and pair.categories[0] else ""


def select_pairs(benchmark: Benchmark, n: int, how: str = "diverse",
                 pair_ids: Sequence[str] = ()) -> list[Pair]:
    """The pairs to explain: ``pair_ids`` if given, else ``n`` pairs, either the first ones or
    round-robin over families (categories on real data) in benchmark order."""
    if pair_ids:
        missing = [p for p in pair_ids if p not in benchmark]
        if missing:
            raise ConfigError(f"explain.pair_ids: not in the benchmark: {', '.join(missing)}")
        return [benchmark.pair(p) for p in pair_ids]
    if how not in SELECTIONS:
        raise ConfigError(f"explain.select: {how!r} is not one of {', '.join(SELECTIONS)}")
    pairs = list(benchmark.pairs)
    if how == "first":
        return pairs[:n]
    queues: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        queues[_group(pair)].append(pair)
    chosen: list[Pair] = []
    while len(chosen) < min(n, len(pairs)):
        for queue in queues.values():
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    order = {p.pair_id: i for i, p in enumerate(pairs)}
    return sorted(chosen, key=lambda p: order[p.pair_id])


@dataclass
class ImageRecord:
    """Everything explained about one image of a pair."""

    query: Query
    answer: Answer | None
    target: OptionLabel  # displayed
    target_source: str
    map: ImageMap
    parts: PartAttribution | None
    truth: Finding | None
    energy: float | None
    hit: bool | None
    model_free_energy: float | None = None

    def row(self) -> dict[str, Any]:
        q = self.query
        return {
            "pair_id": q.pair_id, "image": q.image_index,
            "gold": q.to_original(q.correct),
            "choice": self.answer.choice if self.answer else None,
            "target": q.to_original(self.target), "target_source": self.target_source,
            "margin": _round(self.map.score, 4),
            "baseline_margin": _round(self.map.baseline_score, 4),
            "completeness_gap": _round(self.map.completeness_gap, 4),
            "relative_completeness_gap": _round(self.map.relative_completeness_gap, 4),
            "n_steps": self.map.n_steps, "completeness_flagged": self.map.flagged,
            "family": self.truth.family if self.truth else None,
            "finding_present": self.truth.present if self.truth else None,
            "mask_energy_ratio": _round(self.energy),
            "model_free_mask_energy_ratio": _round(self.model_free_energy),
            "pointing_hit": self.hit,
            "part_shares": ({k: round(v, 2) for k, v in self.parts.shares.items()}
                            if self.parts else None),
            "part_values": ({k: round(v, 4) for k, v in self.parts.values.items()}
                            if self.parts else None),
        }


class SaliencyRun(Explainer):
    """Explains ``pairs`` pairs of a run with ``method`` (see the module docstring)."""

    def __init__(self, method: ImageExplainer, pairs: int = 4, select: str = "diverse",
                 pair_ids: Sequence[str] = (), target: str = "chosen", parts: bool = True,
                 under_probes: bool = True, probe_pairs: int | None = None,
                 conditions: Sequence[str] | None = None, sign: str = "absolute",
                 smooth: float = 0.02, tolerance: float = 0.05, corr_grid: int = 32,
                 overlays: bool = True, if_unsupported: str = "error", sanity: bool = False,
                 sanity_cascade: Mapping[str, Sequence[str]] | None = None,
                 sanity_seed: int = 0, probe_levels: str = "one") -> None:
        if not isinstance(method, ImageExplainer):
            raise ConfigError("explain.method: must build an image attribution method "
                              "(explain.IntegratedGradients or explain.Occlusion)")
        if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1:
            raise ConfigError(f"explain.pairs: must be a positive integer, got {pairs!r}")
        if select not in SELECTIONS:
            raise ConfigError(f"explain.select: {select!r} is not one of {', '.join(SELECTIONS)}")
        if target not in ("chosen", "correct"):
            raise ConfigError(f"explain.target: {target!r} is not one of chosen, correct")
        if probe_pairs is not None and (isinstance(probe_pairs, bool) or probe_pairs < 0):
            raise ConfigError(f"explain.probe_pairs: must be null or >= 0, got {probe_pairs!r}")
        if probe_levels not in ("one", "all"):
            raise ConfigError(f"explain.probe_levels: {probe_levels!r} is not one of one, all")
        self.probe_levels = probe_levels
        if if_unsupported not in ("error", "skip"):
            raise ConfigError(f"explain.if_unsupported: {if_unsupported!r} is not one of "
                              "error, skip")
        for name, value in (("smooth", smooth), ("tolerance", tolerance)):
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"explain.{name}: a fraction of the image side in [0, 1), "
                                  f"got {value!r}")
        if not isinstance(sanity, bool):
            raise ConfigError(f"explain.sanity: true or false, got {sanity!r}")
        if sanity and not isinstance(method, IntegratedGradients):
            # occlusion scores through the adapter's answer path and its cache: a randomised
            # model must never answer there
            raise ConfigError("explain.sanity: the model-randomisation cascade needs "
                              "explain=integrated_gradients (gradients outside the answer cache)")
        self.sanity = sanity
        self.sanity_stages = cascade_stages(sanity_cascade) if sanity else []
        self.sanity_seed = int(sanity_seed)
        self.method = method
        self.pairs = pairs
        self.select = select
        self.pair_ids = tuple(pair_ids or ())
        self.target = target
        self.parts = bool(parts)
        self.under_probes = bool(under_probes)
        self.probe_pairs = probe_pairs
        self.conditions = None if conditions is None else tuple(conditions)
        self.sign = check_sign(sign)
        self.smooth = float(smooth)
        self.tolerance = float(tolerance)
        self.corr_grid = int(corr_grid)
        self.overlays = bool(overlays)
        # "skip": a model or mode the method cannot explain gets one log line instead of an
        # error (the default experiment's saliency must not break runs of API models)
        self.if_unsupported = if_unsupported

    @property
    def name(self) -> str:
        return self.method.name

    def check(self, adapter: ModelAdapter, mode: AnsweringMode) -> None:
        """Fail in one line before any work if the method cannot explain this model and mode."""
        self.method.check(adapter, mode)

    # ---------------------------------------------------------------------------- the runner
    def plan(self, benchmark: Benchmark, adapter: ModelAdapter,
             mode: AnsweringMode) -> dict[str, Any]:
        """What :meth:`explain_run` will compute: pairs, images and the method's settings."""
        try:
            self.check(adapter, mode)
        except ConfigError as err:
            if self.if_unsupported != "skip":
                raise
            return {"method": self.method.name, "skipped": str(err)}
        pairs = select_pairs(benchmark, self.pairs, self.select, self.pair_ids)
        probe_pairs = len(pairs) if self.probe_pairs is None else min(self.probe_pairs,
                                                                       len(pairs))
        return {"method": self.method.name, "pairs": len(pairs), "images": 2 * len(pairs),
                "part_shares": self.parts,
                "pairs_under_each_probe": probe_pairs if self.under_probes else 0,
                "settings": self.method.settings()}

    def explain_run(self, ctx: ExplainContext) -> dict[str, Any]:
        """The runner's entry point."""
        clean_answers = ctx.answers.get(CLEAN, {})
        others = [c for c in ctx.answers if c != CLEAN]
        return self.explain(ctx.adapter, ctx.mode, ctx.benchmark, ctx.clean_queries,
                            clean_answers, ctx.run_dir, ctx.tracker,
                            probe_queries=ctx.probe_queries, conditions=others,
                            progress=ctx.progress, cache_dir=ctx.cache_dir,
                            scoring_adapter=ctx.scoring_adapter)

    def explain(self, adapter: ModelAdapter, mode: AnsweringMode, benchmark: Benchmark,
                clean_queries: Mapping[Key, Query], clean_answers: Mapping[Key, Answer],
                run_dir: str | Path | None, tracker: Any = None,
                probe_queries: Callable[[str, Pair], Sequence[Query]] | None = None,
                conditions: Sequence[str] = (), progress: bool | None = False,
                cache_dir: str | Path | None = None,
                scoring_adapter: ModelAdapter | None = None) -> dict[str, Any]:
        """Explain the selected pairs; write outputs under ``run_dir/saliency``; the summary.
        With ``cache_dir``, maps are stored there and a rerun recomputes none; margins that need
        no gradient (part shares) go through ``scoring_adapter`` (the answer cache) if given."""
        started = time.perf_counter()
        try:
            self.check(adapter, mode)
        except ConfigError as err:
            if self.if_unsupported != "skip":
                raise
            log.warning("saliency skipped: %s", err)
            return {}
        pairs = [p for p in select_pairs(benchmark, self.pairs, self.select, self.pair_ids)
                 if (p.pair_id, 1) in clean_queries and (p.pair_id, 2) in clean_queries]
        if not pairs:
            return {}
        queries = [clean_queries[(p.pair_id, i)] for p in pairs for i in (1, 2)]
        answers = [clean_answers.get(q.key) for q in queries]
        resolved = [resolve_target(q, a, self.target) for q, a in zip(queries, answers)]
        targets = [t for t, _ in resolved]
        log.info("saliency: %s on %d pairs", self.method.name, len(pairs))

        pool = ReferencePool(benchmark)
        self.method.use_references(pool)
        from tqdm.auto import tqdm

        stages = ["maps"] + (["parts"] if self.parts else []) + \
            (["under probes"] if self.under_probes and conditions else []) + \
            (["sanity"] if self.sanity else [])
        bar = tqdm(total=len(stages), desc=f"saliency ({self.method.name})", unit="stage",
                   disable=None if progress is None else not progress, dynamic_ncols=True)
        bar.set_postfix_str(f"maps of {len(queries)} images")
        t0 = time.perf_counter()
        method = self.method if cache_dir is None else CachedMaps(
            self.method, Path(cache_dir) / "saliency", benchmark.content_hash)
        maps = method.attribute(adapter, mode, queries, targets)
        t_maps = time.perf_counter() - t0
        bar.update(1)
        t0 = time.perf_counter()
        parts: list[PartAttribution | None] = [None] * len(queries)
        if self.parts:
            bar.set_postfix_str("image, question and option shares")
            scoring = scoring_adapter or adapter
            record = ShapleyRecord(None if cache_dir is None
                                   else Path(cache_dir) / "saliency" / "shapley.json")
            parts = list(PartShapley(self.method.removal_baseline, record).attribute(
                scoring, mode, queries, targets, scorer=AnswerScorer(scoring, mode)))
            record.save()
            bar.update(1)
        t_parts = time.perf_counter() - t0

        records: list[ImageRecord] = []
        for q, a, (t, source), m, pa in zip(queries, answers, resolved, maps, parts):
            truth = finding(benchmark, benchmark.pair(q.pair_id), q.image_index)
            energy = hit = free = None
            if truth is not None and truth.abnormal:
                mask: np.ndarray = truth.mask  # type: ignore[assignment]
                energy, hit = self._grounding(m, mask)
                pixels = q.image.pixels
                free = mask_energy_ratio(model_free_map(pixels, pool.draw(
                    q.pair_id, q.image_index, MODEL_FREE_REFERENCES, pixels.shape)), mask)
            records.append(ImageRecord(q, a, t, source, m, pa, truth, energy, hit, free))

        pair_corr = {p.pair_id: spearman(records[2 * i].map.map, records[2 * i + 1].map.map,
                                         self.corr_grid) for i, p in enumerate(pairs)}
        t0 = time.perf_counter()
        if "under probes" in stages:
            bar.set_postfix_str(f"{len(conditions)} probe conditions")
        probes = self._under_probes(adapter, mode, pairs, records, probe_queries, conditions,
                                    method)
        t_probes = time.perf_counter() - t0
        t0 = time.perf_counter()
        sanity = None
        if self.sanity:
            bar.update(bar.total - bar.n - 1)
            bar.set_postfix_str("model-randomisation cascade")
            sanity = self._sanity(adapter, mode, queries, targets, records)
        t_sanity = time.perf_counter() - t0
        bar.update(bar.total - bar.n)
        bar.close()

        summary = self._summary(records, pair_corr, probes, pairs)
        if sanity is not None:
            summary["sanity"] = sanity
        out_dir = Path(run_dir) / "saliency" if run_dir is not None else None
        examples = []
        if out_dir is not None:
            examples = self._write(out_dir, pairs, records, probes, summary)
        if tracker is not None:
            self._log(tracker, examples, records, probes)
        summary["elapsed_s"] = {"maps": round(t_maps, 2), "parts": round(t_parts, 2),
                                "probes": round(t_probes, 2), "sanity": round(t_sanity, 2),
                                "total": round(time.perf_counter() - started, 2)}
        log.info("saliency (%s, %d images, %.1f s): mask energy ratio %s (model-free %s), "
                 "pointing game %s of %d images, image reliance %s%%%s", self.method.name,
                 len(records), summary["elapsed_s"]["total"], summary["mask_energy_ratio"],
                 summary["model_free_mask_energy_ratio"],
                 "n/a" if summary["pointing_game"] is None else f"{summary['pointing_game']}%",
                 summary["pointing_game_n"], summary["image_reliance"],
                 f"; overlays in {out_dir}" if out_dir is not None and self.overlays else "")
        return summary

    # ------------------------------------------------------------------------------- probes
    def _under_probes(self, adapter: ModelAdapter, mode: AnsweringMode, pairs: Sequence[Pair],
                      records: Sequence[ImageRecord],
                      probe_queries: Callable[[str, Pair], Sequence[Query]] | None,
                      conditions: Sequence[str], method: Any) -> dict[str, dict[str, Any]]:
        """Per probe condition: maps of the same pairs and their Spearman ρ with clean."""
        if not self.under_probes or probe_queries is None:
            return {}
        wanted = [c for c in conditions if self.conditions is None or c in self.conditions]
        if self.probe_levels == "one" and self.conditions is None:
            wanted = one_level_per_probe(wanted)
        limit = len(pairs) if self.probe_pairs is None else self.probe_pairs
        subset = list(pairs)[:limit]
        if not subset:
            return {}
        clean = {r.query.key: r for r in records}
        out: dict[str, dict[str, Any]] = {}
        for cond in wanted:
            qs: list[Query] = []
            for pair in subset:
                qs += sorted(probe_queries(cond, pair), key=lambda q: q.image_index)
            if any(q.strategy == "cot" for q in qs):
                out[cond] = {"skipped": "chain-of-thought answers are not a next-token score"}
                continue
            sources = [(q.pair_id, int(q.meta.get("source_image", q.image_index))) for q in qs]
            # explain the same original option as for the source image in the clean condition
            targets = [q.label_map.index(clean[s].query.to_original(clean[s].target))
                       for q, s in zip(qs, sources)]
            labels: list[OptionLabel] = ["AB"[i] for i in targets]  # type: ignore[misc]
            try:
                maps = method.attribute(adapter, mode, qs, labels)
            except ConfigError as err:
                out[cond] = {"skipped": str(err)}
                continue
            rhos = [spearman(clean[s].map.map, m.map, self.corr_grid)
                    for s, m in zip(sources, maps)]
            out[cond] = {"rank_correlation": _round(_mean(rhos)), "n_images": len(maps),
                         "per_image": [{"pair_id": q.pair_id, "image": q.image_index,
                                        "source_image": s[1], "rank_correlation": _round(r),
                                        "margin": _round(m.score, 4)}
                                       for q, s, m, r in zip(qs, sources, maps, rhos)],
                         "_maps": maps}
        return out

    def _grounding(self, m: ImageMap, mask: np.ndarray) -> tuple[float | None, bool | None]:
        """Mask energy ratio and pointing hit of one map on its finding's mask."""
        return (mask_energy_ratio(m.map, mask, self.sign),
                pointing_hit(m.map, mask, self.sign, self.smooth, self.tolerance))

    # ------------------------------------------------------------------------------- sanity
    def _sanity(self, adapter: ModelAdapter, mode: AnsweringMode, queries: Sequence[Query],
                targets: Sequence[OptionLabel], records: Sequence[ImageRecord]) -> dict[str, Any]:
        """Re-explain the same images with parts of the model randomised, cumulatively
        (explain/sanity.py); per stage the mean Spearman ρ with the real maps and the grounding."""
        model = adapter.unwrap().load().model  # type: ignore[attr-defined]
        from contextlib import ExitStack

        cascade: list[dict[str, Any]] = []
        with ExitStack() as stack:
            done: list[str] = []
            for i, (stage, names) in enumerate(self.sanity_stages):
                stack.enter_context(randomised(model, names, self.sanity_seed + i))
                done.append(stage)
                maps = self.method.attribute(adapter, mode, queries, targets)
                rhos = [spearman(r.map.map, m.map, self.corr_grid) for r, m in zip(records, maps)]
                grounding = [self._grounding(m, r.truth.mask)  # type: ignore[union-attr]
                             for r, m in zip(records, maps)
                             if r.truth is not None and r.truth.abnormal]
                cascade.append({"randomised": list(done), "spearman": _round(_mean(rhos)),
                                "mask_energy_ratio": _round(_mean([e for e, _ in grounding])),
                                **pointing_summary([h for _, h in grounding])})
                log.info("saliency sanity: %s randomised: Spearman with the real maps %s, "
                         "mask energy ratio %s", "+".join(done), cascade[-1]["spearman"],
                         cascade[-1]["mask_energy_ratio"])
        return {"cascade": cascade, "seed": self.sanity_seed,
                "stages": {stage: list(names) for stage, names in self.sanity_stages}}

    # ------------------------------------------------------------------------------ summary
    def _summary(self, records: Sequence[ImageRecord], pair_corr: Mapping[str, float | None],
                 probes: Mapping[str, Mapping[str, Any]], pairs: Sequence[Pair]) -> dict[str, Any]:
        abnormal = [r for r in records if r.truth is not None and r.truth.abnormal]
        families: dict[str, list[ImageRecord]] = defaultdict(list)
        for r in abnormal:
            families[r.truth.family].append(r)  # type: ignore[union-attr]
        shares = mean_shares([r.parts for r in records if r.parts is not None])
        gaps = [abs(r.map.completeness_gap) for r in records if r.map.completeness_gap is not None]
        real = _mean([r.energy for r in abnormal])
        free = _mean([r.model_free_energy for r in abnormal])
        out: dict[str, Any] = {
            "method": self.method.name,
            "settings": self.method.settings(),
            "target": self.target,
            "sign": self.sign,
            "n_pairs": len(pairs),
            "n_images": len(records),
            "n_abnormal": len(abnormal),
            "mask_energy_ratio": _round(real),
            "model_free_mask_energy_ratio": _round(free),
            "mask_energy_gain": _round(real / free) if real is not None and free else None,
            **pointing_summary([r.hit for r in abnormal]),
            "image_reliance": _round(shares.get("image"), 2),
            "part_shares": {k: round(v, 2) for k, v in shares.items()},
            "per_family": {
                fam: {"n_images": len(rs),
                      "mask_energy_ratio": _round(_mean([r.energy for r in rs])),
                      **pointing_summary([r.hit for r in rs])}
                for fam, rs in sorted(families.items())},
            "pair_rank_correlation": _round(_mean(list(pair_corr.values()))),
            "under_probes": {c: {k: v for k, v in d.items() if k not in ("_maps", "per_image")}
                             for c, d in probes.items()},
            "pairs": [p.pair_id for p in pairs],
            "pointing": {"smooth": self.smooth, "tolerance": self.tolerance},
        }
        if gaps:
            relative = [r.map.relative_completeness_gap for r in records]
            out["completeness_gap"] = _round(float(np.mean(gaps)), 4)
            out["maps"] = [{"pair_id": r.query.pair_id, "image": r.query.image_index,
                            "completeness_gap": _round(r.map.completeness_gap, 4),
                            "relative_completeness_gap": _round(
                                r.map.relative_completeness_gap, 4),
                            "n_steps": r.map.n_steps, "flagged": r.map.flagged}
                           for r in records]
            out["completeness"] = {
                "tolerance": (self.method.completeness_tolerance
                              if isinstance(self.method, IntegratedGradients) else None),
                "relative_gap_median": _round(float(np.median(relative)), 4),
                "over_tolerance": sum(r.map.flagged for r in records),
                "steps": {str(k): v for k, v in sorted(
                    Counter(r.map.n_steps for r in records).items())}}
        return out

    # ------------------------------------------------------------------------------ outputs
    def _caption(self, r: ImageRecord) -> list[str]:
        q = r.query
        choice = (r.answer.choice or "invalid") if r.answer else "?"
        lines = [f"image {q.image_index}: gold {q.to_original(q.correct)}, chose {choice}, "
                 f"explains {q.to_original(r.target)} (margin {r.map.score:+.2f})"]
        if r.truth is not None:
            line = f"{r.truth.family}, finding {'present' if r.truth.present else 'absent'}"
            if r.energy is not None:
                line += f": energy x{r.energy:.1f}, pointing {'hit' if r.hit else 'miss'}"
            lines.append(line)
        if r.parts is not None:
            names = {"image": "image", "question": "question", "option_A": "A", "option_B": "B"}
            lines.append("reliance: " + ", ".join(f"{names.get(k, k)} {v:.0f}%"
                                                  for k, v in r.parts.shares.items()))
        return lines

    def overlay(self, pair: Pair, records: Sequence[ImageRecord]) -> np.ndarray:
        """The overlay image of one explained pair (uint8 RGB)."""
        q = records[0].query
        title = f"{pair.pair_id} · {self.method.name}"
        if records[0].truth is not None:
            title += f" · {records[0].truth.family}"
        panels = [Panel(r.query.image.pixels, r.map.map, self._caption(r),
                        r.truth.mask if r.truth is not None else None,
                        r.truth.present if r.truth is not None else True) for r in records]
        return render_pair(title, q.question, q.options, panels, self.sign, self.smooth)

    def _write(self, out_dir: Path, pairs: Sequence[Pair], records: Sequence[ImageRecord],
               probes: Mapping[str, Mapping[str, Any]], summary: dict[str, Any]) -> list:
        from PIL import Image

        from robustness.tracking.base import ExampleImage

        out_dir.mkdir(parents=True, exist_ok=True)
        examples = []
        arrays: dict[str, np.ndarray] = {}
        for i, pair in enumerate(pairs):
            recs = records[2 * i: 2 * i + 2]
            for r in recs:
                arrays[f"clean/{pair.pair_id}/{r.query.image_index}"] = r.map.map.astype(
                    np.float32)
            if self.overlays:
                pixels = self.overlay(pair, recs)
                name = _safe(pair.pair_id) + ".png"
                _save_png(Image.fromarray(pixels), out_dir / name)
                caption = f"{pair.pair_id} · {pair.question}"
                examples.append(ExampleImage(pixels, caption))
        for cond, data in probes.items():
            for m in data.get("_maps", []):
                arrays[f"{cond}/{m.pair_id}/{m.image_index}"] = m.map.astype(np.float32)
        tmp = out_dir / ".maps.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, out_dir / "maps.npz")
        detail = {"method": self.method.name, "settings": self.method.settings(),
                  "sign": self.sign, "images": [r.row() for r in records],
                  "under_probes": {c: d.get("per_image", d) for c, d in probes.items()}}
        _atomic_text(out_dir / "images.json", json.dumps(detail, indent=1) + "\n")
        summary["overlays"] = "saliency/" if self.overlays else None
        return examples

    def _log(self, tracker: Any, examples: list, records: Sequence[ImageRecord],
             probes: Mapping[str, Mapping[str, Any]]) -> None:
        from robustness.tracking.base import Table

        if examples:
            tracker.log_examples("saliency", examples)
        columns = ["pair_id", "image", "gold", "choice", "target", "target_source", "margin",
                   "family", "finding_present", "mask_energy_ratio", "pointing_hit",
                   "image_share", "question_share", "option_A_share", "option_B_share",
                   "overlay"]
        rows = []
        for r in records:
            row = r.row()
            shares = row["part_shares"] or {}
            rows.append([row["pair_id"], row["image"], row["gold"], row["choice"], row["target"],
                         row["target_source"], row["margin"], row["family"],
                         row["finding_present"], row["mask_energy_ratio"], row["pointing_hit"],
                         shares.get("image"), shares.get("question"), shares.get("option_A"),
                         shares.get("option_B"),
                         f"saliency/{_safe(row['pair_id'])}.png" if self.overlays else None])
        tables = {"saliency": Table.of(columns, rows)}
        probe_rows = [[c, p["pair_id"], p["image"], p["source_image"], p["rank_correlation"],
                       p["margin"]]
                      for c, d in probes.items() for p in d.get("per_image", [])]
        if probe_rows:
            tables["saliency_under_probes"] = Table.of(
                ["condition", "pair_id", "image", "source_image", "rank_correlation", "margin"],
                probe_rows)
        tracker.log_tables(tables)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def _save_png(image: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
