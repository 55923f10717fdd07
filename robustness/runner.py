"""One experiment: answer the benchmark clean and under every probe condition, score, report.

The runner is the only place that knows data, probes, modes, the model, metrics and trackers.
It loads each image once, builds the clean queries, and for every condition walks the pairs in
batches: probe → mode → (cached) adapter → answers. Each batch's new answers are on disk before
the next batch starts (the cache), so a killed run started again recomputes nothing it had
finished and ends with exactly the answers an uninterrupted run gives. Outputs land in the run
folder: ``predictions/<condition>.jsonl``, ``summary.json``, ``report.md`` (via the trackers).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from attacks.base import Condition, Probe, ProbeContext
from robustness.data.types import Benchmark, Pair
from robustness.errors import ConfigError
from robustness.metrics import RANDOM_GUESS, ChoiceKey, ScoreReport, score_pairs
from robustness.models.base import ImageInput, ModelAdapter
from robustness.modes.base import AnsweringMode
from robustness.modes.query import Answer, Query, clean_queries
from robustness.shifts import compute_shifts
from robustness.stats import bootstrap_cis
from robustness.tracking.base import ExampleImage, NullTracker, RunInfo, Table, Tracker
from robustness.tracking.local import format_console_table

log = logging.getLogger(__name__)

CLEAN = "clean"
QueryMap = dict[ChoiceKey, Query]
AnswerMap = dict[ChoiceKey, Answer]


@dataclass
class RunSettings:
    """Knobs of the loop that change no answer."""

    batch_pairs: int = 16  # pairs per model call (2 queries each)
    seed: int = 0  # probe seeds and bootstrap seed
    examples: int = 2  # example pairs per condition drawn for the report and W&B
    resamples: int = 2000  # bootstrap resamples for CIs
    progress: bool | None = None  # None: bars only on a terminal
    answers_table_limit: int = 20000  # rows of the per-question W&B table


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


@dataclass
class ExplainContext:
    """What an explainer (``explain`` config group) gets after the conditions have run."""

    adapter: ModelAdapter  # the model itself, not the cache (gradients, option scores)
    mode: AnsweringMode
    benchmark: Benchmark
    clean_queries: QueryMap
    answers: dict[str, AnswerMap]  # per condition
    probe_queries: Callable[[str, Pair], Sequence[Query]]  # (condition name, pair) -> queries
    run_dir: Path
    tracker: Tracker
    seed: int


@dataclass
class ConditionResult:
    """Everything one condition produced."""

    condition: Condition
    answers: AnswerMap
    pairs: list[Pair]  # scoring pairs (gold possibly changed by the probe)
    report: ScoreReport
    choices: dict[ChoiceKey, Any]
    cache: dict[str, int]
    elapsed_s: float


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if isinstance(o, np.ndarray)
                                 else str(o)))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _safe_name(condition: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-@=" else "_" for ch in condition)


def _batches(items: Sequence[Pair], size: int) -> Iterable[Sequence[Pair]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _truth(query: Query) -> str:
    return query.to_original(query.correct)  # type: ignore[return-value]


def _thumbnail(pixels: np.ndarray, size: int) -> np.ndarray:
    """``pixels`` letterboxed into a size×size RGB tile."""
    from PIL import Image

    img = Image.fromarray(pixels).convert("RGB")
    img.thumbnail((size, size))
    tile = Image.new("RGB", (size, size), (0, 0, 0))
    tile.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return np.asarray(tile)


class Runner:
    """Runs one experiment over a benchmark with one model and mode and a list of probes."""

    def __init__(self, benchmark: Benchmark, adapter: ModelAdapter, mode: AnsweringMode,
                 probes: Sequence[Probe] = (), *, run_dir: str | Path,
                 tracker: Tracker | None = None, settings: RunSettings | None = None,
                 meta: RunMeta | None = None, prompt: Any = None,
                 explainer: Any = None) -> None:
        self.benchmark = benchmark
        self.adapter = adapter
        self.mode = mode
        self.probes = list(probes)
        self.run_dir = Path(run_dir)
        self.tracker = tracker or NullTracker()
        self.settings = settings or RunSettings()
        self.meta = meta or RunMeta()
        self.prompt = prompt  # the base prompting strategy (``PromptStrategy``), or None
        self.explainer = explainer
        if self.settings.batch_pairs < 1:
            raise ConfigError(f"batch_pairs: must be at least 1, got {self.settings.batch_pairs}")
        self.conditions = self._plan()
        self._images: dict[str, tuple[ImageInput, ImageInput]] = {}
        self._clean: QueryMap = {}

    # ------------------------------------------------------------------ configuration checks
    def _plan(self) -> list[tuple[Probe | None, Condition]]:
        """Clean first, then every probe's conditions; names unique; fail before any work."""
        self.mode.check(self.adapter)
        check_strategy = getattr(self.mode, "check_strategy", None)
        if check_strategy is not None and self.prompt is not None:
            check_strategy(self.prompt.strategy)
        plan: list[tuple[Probe | None, Condition]] = [
            (None, Condition(name=CLEAN, probe=CLEAN, params={}))]
        seen = {CLEAN: "the clean condition"}
        for probe in self.probes:
            if check_strategy is not None:
                for strategy in sorted(getattr(probe, "strategies", lambda: ())()):
                    check_strategy(strategy)
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
        k = int(getattr(self.prompt, "few_shot_k", 0) or 0)
        if getattr(self.prompt, "strategy", "") != "few_shot" or k < 1:
            return ()
        from attacks.prompting import FewShot

        picker = FewShot(k=k, name="prompt_few_shot")
        ctx = ProbeContext(benchmark=self.benchmark, seed=self.settings.seed,
                           load_queries=self.raw_queries)
        cond = Condition(name="prompt_few_shot", probe="prompt_few_shot", params={"k": k})
        return tuple(picker.apply(cond, pair, queries, ctx)[0].few_shot)

    def probe_context(self) -> ProbeContext:
        return ProbeContext(benchmark=self.benchmark, seed=self.settings.seed,
                            load_queries=self.clean_pair_queries)

    def condition_queries(self, probe: Probe | None, condition: Condition, pair: Pair,
                          ctx: ProbeContext) -> list[Query]:
        """The queries of ``pair`` under ``condition``: one per image slot, checked."""
        clean = self.clean_pair_queries(pair)
        if probe is None:
            return list(clean)
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

    def _cache_stats(self) -> dict[str, int]:
        stats = getattr(self.adapter, "stats", None)
        return stats.as_dict() if stats is not None else {}

    def run_condition(self, probe: Probe | None, condition: Condition, ctx: ProbeContext,
                      bar: Any = None) -> tuple[ConditionResult, QueryMap]:
        """Answer every pair under ``condition`` in batches; score it."""
        started, before = time.perf_counter(), self._cache_stats()
        pairs = list(self.benchmark.pairs)
        answers: AnswerMap = {}
        queries: QueryMap = {}
        scoring: list[Pair] = []
        for batch in _batches(pairs, self.settings.batch_pairs):
            batch_queries: list[Query] = []
            for pair in batch:
                qs = self.condition_queries(probe, condition, pair, ctx)
                batch_queries += qs
                gold = (_truth(qs[0]), _truth(qs[1]))
                scoring.append(pair if gold == pair.correct else replace(pair, correct=gold))
            for q, a in zip(batch_queries, self._answer(batch_queries)):
                answers[q.key] = a
                queries[q.key] = q
            if bar is not None:
                bar.update(len(batch))
        choices = {k: a.choice for k, a in answers.items()}
        report = score_pairs(scoring, choices)
        after = self._cache_stats()
        cache = {k: after[k] - before.get(k, 0) for k in after}
        return ConditionResult(condition, answers, scoring, report, choices, cache,
                               time.perf_counter() - started), queries

    def run(self) -> dict[str, Any]:
        """Run every condition, write the outputs, return the summary (``summary.json``)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "predictions").mkdir(exist_ok=True)
        started_at, t0 = _utc_now(), time.perf_counter()
        info = RunInfo(name=self.meta.name or self.run_dir.name, run_dir=self.run_dir,
                       group=self.meta.group, job_type=self.meta.mode or self.mode.name,
                       tags=self.meta.tags, config=self.meta.config)
        status = "failed"
        self.tracker.start(info)
        try:
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
        answer_rows: list[tuple[Any, ...]] = []
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
                if probe is None:
                    clean = result
                self._write_predictions(result, queries)
                out = self._condition_summary(probe, result, clean, queries)
                conditions_out[cond.name] = out
                self.tracker.log_condition(cond.name, out)
                self.tracker.log_examples(cond.name, self._examples(result, queries))
                answer_rows += self._answer_rows(result, queries)
                for a in result.answers.values():
                    if a.error:
                        failures[a.error] += 1
                    raw = a.raw if isinstance(a.raw, dict) else {}
                    judge = raw.get("judge") if isinstance(raw.get("judge"), dict) else {}
                    for who, u in (("model", raw.get("usage")), ("judge", judge.get("usage"))):
                        if isinstance(u, dict):
                            usage[f"{who}_input"] += int(u.get("input_tokens") or 0)
                            usage[f"{who}_output"] += int(u.get("output_tokens") or 0)
                log.info("%s: set accuracy %.2f%% (%d answers from cache, %d asked, %.1f s)",
                         cond.name, result.report.overall.set_accuracy,
                         result.cache.get("hits", 0), result.cache.get("misses", 0),
                         result.elapsed_s)
                outer.update(1)
        summary = self._summary(conditions_out, failures, usage, started_at, t0)
        if self.explainer is not None:
            saliency = self.explainer.explain_run(ExplainContext(
                adapter=getattr(self.adapter, "inner", self.adapter), mode=self.mode,
                benchmark=self.benchmark, clean_queries=dict(self._clean),
                answers={k: r.answers for k, r in results.items()},
                probe_queries=self.probe_queries, run_dir=self.run_dir, tracker=self.tracker,
                seed=self.settings.seed))
            if saliency:
                summary["saliency"] = _jsonable(saliency)
            summary["elapsed_s"] = round(time.perf_counter() - t0, 2)
        _atomic_write(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        self.tracker.log_tables(self._tables(summary, answer_rows))
        self.tracker.log_summary(summary)
        return summary

    # ----------------------------------------------------------------------------- outputs
    def _write_predictions(self, result: ConditionResult, queries: QueryMap) -> None:
        lines = []
        for pair in result.pairs:
            for image in (1, 2):
                key = (pair.pair_id, image)
                q, a = queries[key], result.answers[key]
                rec = a.record()
                rec["correct"] = pair.correct[image - 1]
                rec["condition"] = result.condition.name
                rec["query"] = {"options": list(q.options), "label_map": list(q.label_map),
                                "strategy": q.strategy, "image_sha256": q.image.digest}
                if q.meta:
                    rec["query"]["meta"] = dict(q.meta)
                lines.append(json.dumps(_jsonable(rec), ensure_ascii=False))
        path = self.run_dir / "predictions" / f"{_safe_name(result.condition.name)}.jsonl"
        _atomic_write(path, "\n".join(lines) + "\n")

    def _condition_summary(self, probe: Probe | None, result: ConditionResult,
                           clean: ConditionResult | None, queries: QueryMap) -> dict[str, Any]:
        report = result.report
        out: dict[str, Any] = report.as_dict()
        out["ci"] = bootstrap_cis([report.outcomes[p.pair_id] for p in result.pairs],
                                  resamples=self.settings.resamples, seed=self.settings.seed)
        out["probe"] = {"name": result.condition.probe,
                        "params": _jsonable(dict(result.condition.params))}
        if probe is not None and clean is not None:
            overall, per_cat = compute_shifts(result.pairs, clean.report, report, clean.choices,
                                              result.choices, seed=self.settings.seed,
                                              resamples=self.settings.resamples)
            out["shift"] = overall
            out["shift_per_category"] = per_cat
            extra = probe.extra_metrics(result.condition, clean.answers, result.answers, queries) \
                if hasattr(probe, "extra_metrics") else {}
            if extra:
                out["probe_metrics"] = _jsonable(extra)
        out["n_answers"] = len(result.answers)
        out["failures"] = dict(Counter(a.error for a in result.answers.values() if a.error))
        out["cache"] = result.cache
        out["elapsed_s"] = round(result.elapsed_s, 2)
        return out

    def _summary(self, conditions: dict[str, Any], failures: Counter, usage: Counter,
                 started_at: str, t0: float) -> dict[str, Any]:
        bench = self.benchmark
        usage_out = self._usage(usage)
        cache_path = getattr(self.adapter, "path", None)
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
            "prompt": self.meta.prompt,
            "model_id": str(self.adapter.model_id),
            "model_identity": _jsonable(self.adapter.identity()),
            "mode_identity": _jsonable(self.mode.identity()),
            "random_guess": RANDOM_GUESS,
            "failures": dict(failures),
            "usage": usage_out,
            "cache": {**self._cache_stats(), "file": str(cache_path) if cache_path else None},
            "run_dir": str(self.run_dir),
            "started_at": started_at,
            "elapsed_s": round(time.perf_counter() - t0, 2),
            "versions": {"python": platform.python_version(), **_versions()},
        }

    def _judge_adapter(self) -> ModelAdapter | None:
        judge = getattr(self.mode, "judge", None)
        adapter = getattr(judge, "adapter", None)
        return adapter if isinstance(adapter, ModelAdapter) else None

    def _usage(self, tokens: Counter) -> dict[str, Any]:
        """Token usage of the answers (as if asked now) and of this run's model calls (cache
        misses only), with cost estimates where the model config gives ``prices``."""
        def block(inp: int, out: int, prices: Any) -> dict[str, Any]:
            b: dict[str, Any] = {"input_tokens": inp, "output_tokens": out}
            if isinstance(prices, Mapping) and (inp or out):
                b["estimated_cost_usd"] = round(
                    inp / 1e6 * float(prices.get("input_per_million", 0) or 0)
                    + out / 1e6 * float(prices.get("output_per_million", 0) or 0), 6)
            return b

        parts = {"model": (self.adapter, tokens["model_input"], tokens["model_output"])}
        judge = self._judge_adapter()
        if judge is not None or tokens["judge_input"] or tokens["judge_output"]:
            parts["judge"] = (judge, tokens["judge_input"], tokens["judge_output"])
        out: dict[str, Any] = {}
        for who, (adapter, inp, outp) in parts.items():
            prices = getattr(adapter, "prices", None) if adapter is not None else None
            entry = block(inp, outp, prices)
            stats = getattr(adapter, "stats", None)
            if stats is not None and hasattr(stats, "input_tokens"):
                entry["this_run"] = block(stats.input_tokens, stats.output_tokens, prices)
            out[who] = entry
        entries = list(out.values())
        total: dict[str, Any] = {"input_tokens": sum(e["input_tokens"] for e in entries),
                                 "output_tokens": sum(e["output_tokens"] for e in entries)}
        costs = [e["estimated_cost_usd"] for e in entries if "estimated_cost_usd" in e]
        if costs:
            total["estimated_cost_usd"] = round(sum(costs), 6)
        return {**total, **out}

    def _answer_rows(self, result: ConditionResult, queries: QueryMap) -> list[tuple[Any, ...]]:
        rows = []
        for pair in result.pairs:
            for image in (1, 2):
                key = (pair.pair_id, image)
                q, a = queries[key], result.answers[key]
                text = a.raw.get("text") if isinstance(a.raw, dict) else None
                rows.append((result.condition.name, pair.pair_id, image, q.question,
                             q.options[0], q.options[1], a.displayed_choice, a.choice,
                             pair.correct[image - 1], a.choice == pair.correct[image - 1],
                             (str(text)[:300] if text is not None else json.dumps(
                                 _jsonable(a.raw))[:300]), a.error or ""))
        return rows

    def _tables(self, summary: dict[str, Any], answer_rows: list[tuple[Any, ...]]) -> dict[str, Table]:
        metric_cols = ("set_accuracy", "individual_accuracy", "confusion", "invalid_rate",
                       "precision", "valid_pairs")
        shift_cols = ("set_accuracy", "individual_accuracy", "confusion", "flip_rate", "mcnemar_p")
        cond_rows, cat_rows = [], []
        for name, cond in summary["conditions"].items():
            s = cond.get("shift") or {}
            ci = s.get("set_accuracy_ci") or [None, None]
            cond_rows.append([name, cond["probe"]["name"], json.dumps(cond["probe"]["params"])]
                             + [cond["overall"][c] for c in metric_cols]
                             + [s.get(c) for c in shift_cols] + list(ci))
            for cat, m in cond["per_category"].items():
                cs = (cond.get("shift_per_category") or {}).get(cat, {})
                cat_rows.append([name, cat] + [m[c] for c in metric_cols]
                                + [cs.get(c) for c in shift_cols])
        limit = self.settings.answers_table_limit
        return {
            "conditions": Table.of(["condition", "probe", "params", *metric_cols,
                                    *(f"delta_{c}" if c not in ("flip_rate", "mcnemar_p") else c
                                      for c in shift_cols), "ci_low", "ci_high"], cond_rows),
            "per_category": Table.of(["condition", "category", *metric_cols,
                                      *(f"delta_{c}" if c not in ("flip_rate", "mcnemar_p") else c
                                        for c in shift_cols)], cat_rows),
            "answers": Table.of(["condition", "pair_id", "image", "question", "option_A_shown",
                                 "option_B_shown", "displayed_choice", "choice", "correct",
                                 "is_correct", "raw", "error"], answer_rows[:limit]),
        }

    def _examples(self, result: ConditionResult, queries: QueryMap) -> list[ExampleImage]:
        out = []
        for pair in result.pairs[: self.settings.examples]:
            tiles = []
            parts = []
            for image in (1, 2):
                q, a = queries[(pair.pair_id, image)], result.answers[(pair.pair_id, image)]
                tiles.append(_thumbnail(q.image.pixels, 192))
                parts.append(f"im{image}: chose {a.choice or 'invalid'} (gold "
                             f"{pair.correct[image - 1]})")
            gap = np.full((192, 6, 3), 255, dtype=np.uint8)
            caption = f"{result.condition.name} · pair {pair.pair_id} · {pair.question} · " \
                      + "; ".join(parts)
            out.append(ExampleImage(np.concatenate([tiles[0], gap, tiles[1]], axis=1), caption))
        return out


def _versions() -> dict[str, str]:
    import robustness

    out = {"robustness": robustness.__version__}
    for name in ("torch", "transformers"):
        module = __import__("sys").modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "")
    return out
