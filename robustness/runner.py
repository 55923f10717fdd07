"""One experiment: answer the benchmark clean and under every probe condition, score, report.

The runner is the only place that knows data, probes, modes, the model, metrics and trackers.
It loads each image once, builds the clean queries, and for every condition walks the pairs in
batches: probe → mode → (cached) adapter → answers. Each batch's new answers are on disk before
the next batch starts (the cache), so a killed run started again recomputes nothing it had
finished and ends with exactly the answers an uninterrupted run gives. Outputs land in the run
folder: ``predictions/<condition>.jsonl``, ``summary.json``, ``report.md`` (via the trackers).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

from attacks.base import Condition, Probe, ProbeContext, scoring_pair
from explain.base import ExplainContext, Explainer
from robustness.data.derived import DerivedDigests
from robustness.data.tiles import TileStore
from robustness.data.types import Benchmark, Pair, pair_clusters
from robustness.errors import ConfigError
from robustness.interrupts import StopOnInterrupt
from robustness.metrics import RANDOM_GUESS, score_pairs
from robustness.attacking import AttackSession
from robustness.data.image import ImageInput
from robustness.models.base import ModelAdapter
from robustness.models.cache import CachedAdapter
from robustness.modes.base import AnsweringMode
from robustness.modes.prompts import PromptStrategy
from robustness.data.query import Answer, Query, clean_queries
from robustness.shifts import compute_shifts
from robustness.similarity import by_similarity
from robustness.stats import bootstrap_cis, clustered
from robustness.run_outputs import (AnswerMap, ConditionResult, QueryMap, answer_rows,
                                     atomic_write, backend_stats, count_usage, examples, jsonable,
                                     strict_json, tables, usage_summary, versions,
                                     write_predictions, write_report_inputs)
from robustness.tracking.base import NullTracker, RunInfo, Tracker

log = logging.getLogger(__name__)

CLEAN = "clean"


@dataclass
class RunSettings:
    """Knobs of the loop that change no answer (defaults: ``conf/config.yaml``)."""

    batch_pairs: int  # pairs per model call (2 queries each)
    seed: int  # probe seeds and bootstrap seed
    examples: int  # example pairs per condition drawn for the report and W&B
    resamples: int  # bootstrap resamples for CIs
    progress: bool | None  # None: bars only on a terminal
    uncertainty: str = "clustered"  # clustered: pairs sharing an image resampled together
    answers_table_limit: int = 20000  # rows of the per-question W&B table (not a setting)
    report_images: int = 16  # pairs per pixel-changing condition shown in report.html's browser
    cache_dir: Path | None = None  # cache.dir when the cache is on: saliency maps are kept there


@dataclass
class RunMeta:
    """Names and provenance recorded in the summary (filled by the Hydra app)."""

    model: str = ""
    mode: str = ""
    dataset: str = ""
    prompt: str = "direct"
    name: str = ""
    group: str = ""
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)  # resolved, redacted
    dataset_settings: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None  # torch intra-op threads of this job


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _batches(items: Sequence[Pair], size: int) -> Iterable[Sequence[Pair]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Runner:
    """Runs one experiment over a benchmark with one model and mode and a list of probes."""

    def __init__(self, benchmark: Benchmark, adapter: ModelAdapter, mode: AnsweringMode,
                 probes: Sequence[Probe] = (), *, run_dir: str | Path, settings: RunSettings,
                 tracker: Tracker | None = None, meta: RunMeta | None = None,
                 prompt: PromptStrategy | None = None,
                 explainer: Explainer | None = None) -> None:
        self.benchmark = benchmark
        self.adapter = adapter
        self.mode = mode
        self.probes = list(probes)
        self.run_dir = Path(run_dir)
        self.tracker = tracker or NullTracker()
        self.settings = settings
        self.meta = meta or RunMeta()
        self.prompt = prompt  # the base prompting strategy (``PromptStrategy``), or None
        self.explainer = explainer
        if self.settings.batch_pairs < 1:
            raise ConfigError(f"batch_pairs: must be at least 1, got {self.settings.batch_pairs}")
        self.conditions = self._plan()
        self.attacks = AttackSession(self.probes, adapter, mode)  # refuses what cannot work
        self._images: dict[str, tuple[ImageInput, ImageInput]] = {}
        # corrupted images' digests from earlier runs: a rerun hashes no pixels it need not show
        self._derived = (DerivedDigests(settings.cache_dir / "derived" / "corruptions.json")
                         if settings.cache_dir is not None else None)
        # report tiles by digest: a rerun's report draws no pixels (nor corruptions) again
        self._tiles = TileStore(settings.cache_dir / "derived" / "tiles"
                                if settings.cache_dir is not None else None)
        self._clean: QueryMap = {}
        self._interrupt = StopOnInterrupt()  # active during run(); checked between batches

    # ------------------------------------------------------------------ configuration checks
    def _plan(self) -> list[tuple[Probe | None, Condition]]:
        """Clean first, then every probe's conditions; names unique; fail before any work."""
        self.mode.check(self.adapter)
        if self.prompt is not None:
            self.mode.check_strategy(self.prompt.strategy)
        plan: list[tuple[Probe | None, Condition]] = [
            (None, Condition(name=CLEAN, probe=CLEAN, params={}))]
        seen = {CLEAN: "the clean condition"}
        for probe in self.probes:
            probe.check(self.benchmark)
            for strategy in sorted(probe.strategies()):
                self.mode.check_strategy(strategy)
            for cond in probe.conditions():
                if cond.name in seen:
                    raise ConfigError(f"probe {probe.name}: condition name {cond.name!r} is "
                                      f"already used by {seen[cond.name]}; give the probe a "
                                      f"different name (probe.{probe.name}.name=...)")
                seen[cond.name] = f"probe {probe.name}"
                plan.append((probe, cond))
        return plan

    # ------------------------------------------------------------------------- queries
    def images(self, pair: Pair) -> tuple[ImageInput, ImageInput]:
        """The pair's two images, decoded once per run."""
        if pair.pair_id not in self._images:
            if pair.images is None:
                raise ConfigError(f"pair {pair.pair_id}: no image files attached to the benchmark")
            self._images[pair.pair_id] = (ImageInput.open(pair.images[0]),
                                          ImageInput.open(pair.images[1]))
        return self._images[pair.pair_id]

    def raw_queries(self, pair: Pair) -> tuple[Query, Query]:
        """The unperturbed queries of ``pair`` before the base prompting strategy."""
        return clean_queries(pair, self.images(pair))

    def clean_pair_queries(self, pair: Pair) -> tuple[Query, Query]:
        """The clean queries of ``pair`` with the run's base prompting strategy applied."""
        if (pair.pair_id, 1) not in self._clean:
            qs = self.raw_queries(pair)
            if self.prompt is not None:
                examples = self._base_examples(pair, qs)
                qs = tuple(self.prompt.apply(q, examples) for q in qs)  # type: ignore[assignment]
            for q in qs:
                self._clean[q.key] = q
        return self._clean[(pair.pair_id, 1)], self._clean[(pair.pair_id, 2)]

    def _base_examples(self, pair: Pair, queries: tuple[Query, Query]) -> tuple:
        """Worked examples for a ``few_shot`` base strategy: the few_shot probe's seeded pick
        from other pairs (never this one), images from the raw loader (no recursion)."""
        if self.prompt is None or self.prompt.strategy != "few_shot":
            return ()
        k = self.prompt.few_shot_k
        from attacks.prompting import FewShot

        picker = FewShot(k=k, name="prompt_few_shot")
        ctx = ProbeContext(benchmark=self.benchmark, seed=self.settings.seed,
                           load_queries=self.raw_queries)
        cond = Condition(name="prompt_few_shot", probe="prompt_few_shot", params={"k": k})
        return tuple(picker.apply(cond, pair, queries, ctx)[0].few_shot)

    def probe_context(self) -> ProbeContext:
        return ProbeContext(benchmark=self.benchmark, seed=self.settings.seed,
                            load_queries=self.clean_pair_queries, derived=self._derived)

    def condition_queries(self, probe: Probe | None, condition: Condition, pair: Pair,
                          ctx: ProbeContext) -> list[Query]:
        """The queries of ``pair`` under ``condition``: one per image slot, checked."""
        clean = self.clean_pair_queries(pair)
        if probe is None:
            return list(clean)
        if self.attacks.handles(probe):
            out = list(self.attacks.queries(probe, condition, pair, self.clean_pair_queries,
                                            ctx))
        else:
            out = list(probe.apply(condition, pair, clean, ctx))
        slots = sorted(q.image_index for q in out)
        if slots != [1, 2] or any(q.pair_id != pair.pair_id for q in out):
            raise RuntimeError(f"probe {probe.name} ({condition.name}) returned queries for "
                               f"slots {slots} of pair {pair.pair_id}; expected one per slot 1, 2")
        return sorted(out, key=lambda q: q.image_index)

    def probe_queries(self, condition_name: str, pair: Pair) -> list[Query]:
        """Queries of ``pair`` under a named condition of this run (for explainers)."""
        for probe, cond in self.conditions:
            if cond.name == condition_name:
                return self.condition_queries(probe, cond, pair, self.probe_context())
        raise KeyError(condition_name)

    # ---------------------------------------------------------------------------- the loop
    def _progress(self, **kwargs: Any):
        from tqdm.auto import tqdm

        disable = None if self.settings.progress is None else not self.settings.progress
        return tqdm(disable=disable, dynamic_ncols=True, **kwargs)

    def _answer(self, queries: list[Query]) -> list[Answer]:
        answers = list(self.mode.answer(self.adapter, queries))
        if len(answers) != len(queries):
            raise RuntimeError(f"mode {self.mode.name} returned {len(answers)} answers for "
                               f"{len(queries)} queries")
        for q, a in zip(queries, answers):
            if (a.pair_id, a.image_index) != q.key:
                raise RuntimeError(f"mode {self.mode.name} answered {a.pair_id}/{a.image_index} "
                                   f"for query {q.pair_id}/{q.image_index}")
        return answers

    def _clusters(self, pairs: Sequence[Pair]) -> list[int] | None:
        """Cluster indices of ``pairs`` (pairs sharing an image) unless ``uncertainty=pairs``."""
        return pair_clusters(pairs) if self.settings.uncertainty == "clustered" else None

    def _uncertainty(self) -> dict[str, Any]:
        """How CIs and tests treat pairs: clusters where pairs share images, else pairs."""
        clusters = self._clusters(list(self.benchmark.pairs))
        if clusters is None or clustered(clusters) is None:
            return {"method": "pairs", "clusters": len(self.benchmark)}
        return {"method": "clustered", "clusters": len(set(clusters))}

    def _skipped_lines(self) -> int:
        return self.adapter.skipped_lines if isinstance(self.adapter, CachedAdapter) else 0

    def _cache_stats(self) -> dict[str, int]:
        cached = self.adapter if isinstance(self.adapter, CachedAdapter) else None
        return cached.cache_stats.as_dict() if cached is not None else {}

    def run_condition(self, probe: Probe | None, condition: Condition, ctx: ProbeContext,
                      bar: Any = None) -> tuple[ConditionResult, QueryMap]:
        """Answer every pair under ``condition`` in batches; score it."""
        started, before = time.perf_counter(), self._cache_stats()
        pairs = list(self.benchmark.pairs)
        answers: AnswerMap = {}
        queries: QueryMap = {}
        scoring: list[Pair] = []
        answer_s = 0.0
        for batch in _batches(pairs, self.settings.batch_pairs):
            self._interrupt.check()  # a Ctrl-C Python dropped inside a finaliser still stops
            if self.attacks.handles(probe):  # one attack batch for the batch's pairs
                self.attacks.prepare(probe, condition, batch, self.clean_pair_queries, ctx)
            batch_queries: list[Query] = []
            for pair in batch:
                qs = self.condition_queries(probe, condition, pair, ctx)
                batch_queries += qs
                scoring.append(scoring_pair(pair, qs))
            asked = time.perf_counter()
            batch_answers = self._answer(batch_queries)
            answer_s += time.perf_counter() - asked
            for q, a in zip(batch_queries, batch_answers):
                answers[q.key] = a
                queries[q.key] = q
            if bar is not None:
                bar.update(len(batch))
        choices = {k: a.choice for k, a in answers.items()}
        report = score_pairs(scoring, choices)
        after = self._cache_stats()
        cache = {k: after[k] - before.get(k, 0) for k in after}
        return ConditionResult(condition, answers, scoring, report, choices, cache,
                               time.perf_counter() - started, answer_s), queries

    def run(self) -> dict[str, Any]:
        """Run every condition, write the outputs, return the summary (``summary.json``)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "predictions").mkdir(exist_ok=True)
        started_at, t0 = _utc_now(), time.perf_counter()
        info = RunInfo(name=self.meta.name or self.run_dir.name, run_dir=self.run_dir,
                       group=self.meta.group, job_type=self.meta.mode or self.mode.name,
                       tags=self.meta.tags, config=self.meta.config)
        status = "failed"
        if self._skipped_lines():
            log.warning("answer cache %s: %d unreadable line(s) skipped and treated as misses "
                        "(`robustness cache compact` removes them)", self.adapter.path,
                        self._skipped_lines())
        try:
            with self._interrupt, logging_redirect_tqdm():  # log lines above the bars
                self.tracker.start(info)
                summary = self._run(started_at, t0)
            status = "ok"
            return summary
        except KeyboardInterrupt:
            status = "interrupted"
            log.warning("interrupted: every finished batch is in the answer cache; run the same "
                        "command again to resume")
            raise
        finally:
            self.tracker.finish(status)

    def _run(self, started_at: str, t0: float) -> dict[str, Any]:
        ctx = self.probe_context()
        results: dict[str, ConditionResult] = {}
        conditions_out: dict[str, Any] = {}
        rows: list[tuple[Any, ...]] = []
        failures: Counter[str] = Counter()
        usage = Counter()
        clean: ConditionResult | None = None
        with self._progress(total=len(self.conditions), desc="conditions", unit="cond",
                            position=0) as outer:
            for probe, cond in self.conditions:
                outer.set_postfix_str(cond.name)
                with self._progress(total=len(self.benchmark), desc=cond.name, unit="pair",
                                    position=1, leave=False) as bar:
                    result, queries = self.run_condition(probe, cond, ctx, bar)
                results[cond.name] = result
                if self._derived is not None:
                    self._derived.save()
                if probe is None:
                    clean = result
                    self.attacks.clean_answers = dict(result.answers)
                write_predictions(self.run_dir, result, queries)
                write_report_inputs(self.run_dir, result, queries,
                                    None if probe is None else self.settings.report_images,
                                    tiles=self._tiles)
                if self.attacks.handles(probe):
                    self.attacks.save(self.run_dir, probe, cond, queries, self._clean,
                                      self.benchmark)
                out = self._condition_summary(probe, result, clean, queries)
                conditions_out[cond.name] = out
                self.tracker.log_condition(cond.name, out)
                if probe is not None and self._same_pixels_as_clean(queries):
                    self.tracker.log_examples(cond.name, [], same_pixels_as="clean")
                else:
                    self.tracker.log_examples(cond.name, examples(
                        result, queries, self.settings.examples, tiles=self._tiles))
                rows += answer_rows(result, queries)
                failures.update(a.error for a in result.answers.values() if a.error)
                count_usage(result.answers, usage)
                log.info("%s: set accuracy %.2f%% (%d answers from cache, %d asked, %.1f s)",
                         cond.name, result.report.overall.set_accuracy,
                         result.cache.get("hits", 0), result.cache.get("misses", 0),
                         result.elapsed_s)
                outer.update(1)
        if self.attacks.attacks:
            correct = {name: {pid: o.both_correct for pid, o in r.report.outcomes.items()}
                       for name, r in results.items()}
            self.attacks.finish(conditions_out, correct, [p.pair_id for p in self.benchmark])
        summary = self._summary(conditions_out, failures, usage, started_at, t0)
        if clean is not None:
            summary["by_similarity"] = by_similarity(clean.pairs, clean.report.outcomes,
                                                     self.images)
        if self.explainer is not None:
            saliency = self.explainer.explain_run(ExplainContext(
                adapter=self.adapter.unwrap(), mode=self.mode,
                benchmark=self.benchmark, clean_queries=dict(self._clean),
                answers={k: r.answers for k, r in results.items()},
                probe_queries=self.probe_queries, run_dir=self.run_dir, tracker=self.tracker,
                seed=self.settings.seed, progress=self.settings.progress,
                cache_dir=self.settings.cache_dir, scoring_adapter=self.adapter))
            if saliency:
                summary["saliency"] = jsonable(saliency)
            summary["elapsed_s"] = round(time.perf_counter() - t0, 2)
        atomic_write(self.run_dir / "summary.json", strict_json(summary) + "\n")
        self.tracker.log_tables(tables(summary, rows, self.settings.answers_table_limit))
        self.tracker.log_summary(summary)
        return summary

    # ----------------------------------------------------------------------------- outputs
    def _same_pixels_as_clean(self, queries: QueryMap) -> bool:
        """Whether a condition showed exactly the clean images (a text-only probe)."""
        return all(key in self._clean and q.image.digest == self._clean[key].image.digest
                   for key, q in queries.items())

    def _condition_summary(self, probe: Probe | None, result: ConditionResult,
                           clean: ConditionResult | None, queries: QueryMap) -> dict[str, Any]:
        report = result.report
        out: dict[str, Any] = report.as_dict()
        clusters = self._clusters(result.pairs)
        out["ci"] = bootstrap_cis([report.outcomes[p.pair_id] for p in result.pairs],
                                  resamples=self.settings.resamples, seed=self.settings.seed,
                                  clusters=clusters)
        out["probe"] = {"name": result.condition.probe,
                        "params": jsonable(dict(result.condition.params))}
        if probe is not None and clean is not None:
            overall, per_cat = compute_shifts(result.pairs, clean.report, report, clean.choices,
                                              result.choices, seed=self.settings.seed,
                                              resamples=self.settings.resamples,
                                              clusters=clusters)
            out["shift"] = overall
            out["shift_per_category"] = per_cat
            extra = probe.extra_metrics(result.condition, clean.answers, result.answers, queries)
            if extra:
                out["probe_metrics"] = jsonable(extra)
        out["n_answers"] = len(result.answers)
        out["failures"] = dict(Counter(a.error for a in result.answers.values() if a.error))
        out["cache"] = result.cache
        out["elapsed_s"] = round(result.elapsed_s, 2)
        out["answer_s"] = round(result.answer_s, 2)
        return out

    def _summary(self, conditions: dict[str, Any], failures: Counter, usage: Counter,
                 started_at: str, t0: float) -> dict[str, Any]:
        bench = self.benchmark
        cache_path = self.adapter.path if isinstance(self.adapter, CachedAdapter) else None
        return {
            "model": self.meta.model or str(self.adapter.model_id),
            "mode": self.meta.mode or self.mode.name,
            "dataset": self.meta.dataset or bench.name,
            "n_pairs": len(bench),
            "conditions": conditions,
            "benchmark": {"name": bench.name, "path": str(bench.source) if bench.source else None,
                          "content_hash": bench.content_hash, "n_pairs": len(bench),
                          **({"settings": self.meta.dataset_settings}
                             if self.meta.dataset_settings else {})},
            "seed": self.settings.seed,
            "uncertainty": self._uncertainty(),
            "prompt": self.meta.prompt,
            "model_id": str(self.adapter.model_id),
            "model_identity": jsonable(self.adapter.identity()),
            "mode_identity": jsonable(self.mode.identity()),
            "random_guess": RANDOM_GUESS,
            "failures": dict(failures),
            "usage": usage_summary(usage, self.adapter, self._judge_adapter()),
            "cache": {**self._cache_stats(), "skipped_lines": self._skipped_lines(),
                      "file": str(cache_path) if cache_path else None},
            **backend_stats(self.adapter, self._judge_adapter()),
            "run_dir": str(self.run_dir),
            "threads": self.meta.threads,
            "started_at": started_at,
            "elapsed_s": round(time.perf_counter() - t0, 2),
            "versions": versions(),
        }

    def _judge_adapter(self) -> ModelAdapter | None:
        return self.mode.auxiliary_adapters().get("judge")


