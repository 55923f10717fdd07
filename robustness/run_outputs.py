"""What a run writes: predictions files, W&B/report tables, example images, usage and costs.

Pure functions over a condition's answers and the summary, so the runner's loop stays short.
"""

from __future__ import annotations

import json
import math
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from attacks.base import Condition
from robustness.data.tiles import TileStore
from robustness.data.types import OPTION_LABELS, Pair
from robustness.metrics import ChoiceKey, ScoreReport
from robustness.models.base import ModelAdapter
from robustness.models.cache import CachedAdapter
from robustness.data.query import Answer, Query
from robustness.tracking.base import ExampleImage, Table

log = logging.getLogger(__name__)

QueryMap = dict[ChoiceKey, Query]
AnswerMap = dict[ChoiceKey, Answer]


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
    answer_s: float = 0.0  # of elapsed_s: the mode and model answering (not probes, scoring)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (arrays as lists, anything else unknown as text)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if isinstance(o, np.ndarray)
                                 else str(o)))


def finite_or_none(value: Any) -> Any:
    """Strict JSON: a number that cannot be computed (NaN, ±inf) becomes null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value


def strict_json(obj: Any, indent: int | None = 2) -> str:
    """JSON that every parser reads: non-finite numbers as null, never ``NaN``."""
    return json.dumps(finite_or_none(obj), indent=indent, allow_nan=False)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def safe_name(condition: str) -> str:
    """A condition name usable as a file name (``gaussian_noise@3`` stays as it is)."""
    return "".join(ch if ch.isalnum() or ch in "._-@=" else "_" for ch in condition)


def write_predictions(run_dir: Path, result: ConditionResult, queries: QueryMap) -> Path:
    """``predictions/<condition>.jsonl``: one ``robustness score`` record per image, plus the
    truth for this condition, the displayed options and label map, and the image's digest."""
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
            lines.append(json.dumps(jsonable(rec), ensure_ascii=False))
    path = run_dir / "predictions" / f"{safe_name(result.condition.name)}.jsonl"
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def answer_rows(result: ConditionResult, queries: QueryMap) -> list[tuple[Any, ...]]:
    """Rows of the per-question table: what was asked, answered and right."""
    rows = []
    for pair in result.pairs:
        for image in (1, 2):
            key = (pair.pair_id, image)
            q, a = queries[key], result.answers[key]
            text = a.raw.get("text") if isinstance(a.raw, dict) else None
            raw = str(text) if text is not None else json.dumps(jsonable(a.raw))
            rows.append((result.condition.name, pair.pair_id, image, q.question,
                         q.options[0], q.options[1], a.displayed_choice, a.choice,
                         pair.correct[image - 1], a.choice == pair.correct[image - 1],
                         raw[:300], a.error or ""))
    return rows


METRIC_COLUMNS = ("set_accuracy", "individual_accuracy", "confusion", "invalid_rate",
                  "precision", "valid_pairs")
SHIFT_COLUMNS = ("set_accuracy", "individual_accuracy", "confusion", "flip_rate", "mcnemar_p")
SHIFT_NAMES = tuple(c if c in ("flip_rate", "mcnemar_p") else f"delta_{c}" for c in SHIFT_COLUMNS)
ANSWER_COLUMNS = ("condition", "pair_id", "image", "question", "option_A_shown",
                  "option_B_shown", "displayed_choice", "choice", "correct", "is_correct", "raw",
                  "error")


PARAM_COLUMNS = ("severity", "eps", "weight")  # a graded probe's knob, numeric for charts


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def tables(summary: dict[str, Any], answers: list[tuple[Any, ...]],
           limit: int = 20000) -> dict[str, Table]:
    """The per-condition, per-category and per-question tables."""
    cond_rows, cat_rows = [], []
    for name, cond in summary["conditions"].items():
        s = cond.get("shift") or {}
        ci = s.get("set_accuracy_ci") or [None, None]
        params = cond["probe"]["params"]
        cond_rows.append([name, cond["probe"]["name"], json.dumps(params)]
                         + [params.get(p) if _numeric(params.get(p)) else None
                            for p in PARAM_COLUMNS]
                         + [cond["overall"][c] for c in METRIC_COLUMNS]
                         + [s.get(c) for c in SHIFT_COLUMNS] + list(ci))
        for cat, m in cond["per_category"].items():
            cs = (cond.get("shift_per_category") or {}).get(cat, {})
            cat_rows.append([name, cat] + [m[c] for c in METRIC_COLUMNS]
                            + [cs.get(c) for c in SHIFT_COLUMNS])
    return {
        "conditions": Table.of(["condition", "probe", "params", *PARAM_COLUMNS, *METRIC_COLUMNS,
                                *SHIFT_NAMES,
                                "ci_low", "ci_high"], cond_rows),
        "per_category": Table.of(["condition", "category", *METRIC_COLUMNS, *SHIFT_NAMES],
                                 cat_rows),
        "answers": Table.of(ANSWER_COLUMNS, answers[:limit]),
    }


def _caption_panel(lines: list[str], width: int) -> np.ndarray:
    """Lines of text drawn under a pair (PIL's built-in font, so no font file is needed)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    wrapped: list[str] = []
    for line in lines:
        words, current = line.split(), ""
        for word in words:
            trial = f"{current} {word}".strip()
            if current and font.getlength(trial) > width - 12:
                wrapped.append(current)
                current = word
            else:
                current = trial
        wrapped.append(current)
    panel = Image.new("RGB", (width, 8 + 17 * len(wrapped)), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for i, line in enumerate(wrapped):
        draw.text((6, 4 + 17 * i), line, fill=(20, 20, 20), font=font)
    return np.asarray(panel)


def examples(result: ConditionResult, queries: QueryMap, n: int, size: int = 192,
             tiles: TileStore | None = None) -> list[ExampleImage]:
    """The first ``n`` pairs as the model saw them under this condition, side by side, with the
    question, the options as shown, the right answer and the model's answer drawn under them."""
    tiles = tiles or TileStore(None)
    out = []
    for pair in result.pairs[:n]:
        row, parts = [], []
        for image in (1, 2):
            q, a = queries[(pair.pair_id, image)], result.answers[(pair.pair_id, image)]
            row.append(tiles.tile(q.image, size))
            right = q.label_map.index(pair.correct[image - 1]) if pair.correct[image - 1] in \
                q.label_map else None
            shown_right = OPTION_LABELS[right] if right is not None else pair.correct[image - 1]
            verdict = "right" if a.choice == pair.correct[image - 1] else "wrong"
            parts.append(f"image {image}: answered {a.displayed_choice or 'invalid'}, right "
                         f"answer {shown_right} ({verdict})")
        q1 = queries[(pair.pair_id, 1)]
        gap = np.full((size, 6, 3), 255, dtype=np.uint8)
        strip = np.concatenate([row[0], gap, row[1]], axis=1)
        lines = [f"{result.condition.name} · pair {pair.pair_id}", q1.question,
                 "   ".join(f"{OPTION_LABELS[i]}: {t}" for i, t in enumerate(q1.options)), *parts]
        card = np.concatenate([strip, _caption_panel(lines, strip.shape[1])], axis=0)
        out.append(ExampleImage(card, " · ".join(lines)))
    return out


def write_report_inputs(run_dir: Path, result: ConditionResult, queries: QueryMap,
                        image_pairs: int | None, size: int = 80,
                        tiles: TileStore | None = None) -> None:
    """What ``report.html`` draws from besides predictions: ``report/pairs.json`` (question and
    categories per pair) and JPEG thumbnails of the images shown, by digest, for the first
    ``image_pairs`` pairs of the condition (``None``: all)."""
    from PIL import Image

    tiles = tiles or TileStore(None)
    folder = run_dir / "report" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    pairs_file = run_dir / "report" / "pairs.json"
    known = json.loads(pairs_file.read_text(encoding="utf-8")) if pairs_file.is_file() else {}
    if any(p.pair_id not in known for p in result.pairs):
        known.update({p.pair_id: {"question": p.question, "categories": [list(c) for c in
                                                                          p.categories]}
                      for p in result.pairs})
        atomic_write(pairs_file, json.dumps(known, ensure_ascii=False) + "\n")
    chosen = result.pairs if image_pairs is None else result.pairs[:image_pairs]
    for pair in chosen:
        for image in (1, 2):
            q = queries[(pair.pair_id, image)]
            path = folder / f"{q.image.digest[:16]}.jpg"
            if not path.exists():
                tile = tiles.tile(q.image, size)
                grey = bool((tile[..., 0] == tile[..., 1]).all() and (tile[..., 1] == tile[..., 2]).all())
                tmp = path.with_suffix(".tmp")
                Image.fromarray(tile[..., 0] if grey else tile).save(tmp, format="JPEG", quality=75)
                tmp.replace(path)


def count_usage(answers: Mapping[ChoiceKey, Answer], into: Counter) -> None:
    """Add the model's and the judge's token usage recorded in ``answers`` to ``into``."""
    for a in answers.values():
        raw = a.raw if isinstance(a.raw, dict) else {}
        judge = raw.get("judge") if isinstance(raw.get("judge"), dict) else {}
        for who, u in (("model", raw.get("usage")), ("judge", judge.get("usage"))):
            if isinstance(u, dict):
                into[f"{who}_input"] += int(u.get("input_tokens") or 0)
                into[f"{who}_output"] += int(u.get("output_tokens") or 0)


def _usage_block(inp: int, out: int, prices: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"input_tokens": inp, "output_tokens": out}
    if isinstance(prices, Mapping) and (inp or out):
        block["estimated_cost_usd"] = round(
            inp / 1e6 * float(prices.get("input_per_million", 0) or 0)
            + out / 1e6 * float(prices.get("output_per_million", 0) or 0), 6)
    return block


def usage_summary(tokens: Counter, model: ModelAdapter,
                  judge: ModelAdapter | None) -> dict[str, Any]:
    """Token usage of the answers (as if asked now) and of this run's model calls (cache
    misses only, ``this_run``), with cost estimates where the config gives ``prices``."""
    parts = {"model": (model, tokens["model_input"], tokens["model_output"])}
    if judge is not None or tokens["judge_input"] or tokens["judge_output"]:
        parts["judge"] = (judge, tokens["judge_input"], tokens["judge_output"])
    out: dict[str, Any] = {}
    for who, (adapter, inp, outp) in parts.items():
        prices = adapter.prices if adapter is not None else None
        entry = _usage_block(inp, outp, prices)
        if isinstance(adapter, CachedAdapter):
            stats = adapter.cache_stats
            entry["this_run"] = _usage_block(stats.input_tokens, stats.output_tokens, prices)
        out[who] = entry
    entries = list(out.values())
    total: dict[str, Any] = {"input_tokens": sum(e["input_tokens"] for e in entries),
                             "output_tokens": sum(e["output_tokens"] for e in entries)}
    costs = [e["estimated_cost_usd"] for e in entries if "estimated_cost_usd" in e]
    if costs:
        total["estimated_cost_usd"] = round(sum(costs), 6)
    return {**total, **out}


def backend_stats(model: ModelAdapter, judge: ModelAdapter | None) -> dict[str, Any]:
    """Counters a backend keeps itself (API adapters' ``stats()``: requests, retries, failures)."""
    out = {}
    for key, adapter in (("model_stats", model), ("judge_stats", judge)):
        if adapter is None:
            continue
        try:
            stats = adapter.stats()
        except Exception:  # noqa: BLE001 - counters are informative, never fatal
            log.debug("no stats from %s", type(adapter).__name__, exc_info=True)
            continue
        if stats is not None:
            out[key] = jsonable(stats)
    return out


def versions() -> dict[str, str]:
    """Versions of the toolkit, the libraries that compute answers, and the image pipeline
    (albumentations and OpenCV decide what a corrupted image looks like)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import robustness

    out = {"python": platform.python_version(), "robustness": robustness.__version__}
    for name, dists in (("torch", ("torch",)), ("transformers", ("transformers",)),
                        ("albumentations", ("albumentations",)),
                        ("opencv", ("opencv-python-headless", "opencv-python",
                                    "opencv-contrib-python-headless"))):
        for dist in dists:
            try:
                out[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return out
