"""Builders for the gate tests: a synthetic benchmark in the official schema and run folders that
follow the run-folder contract (``summary.json`` + ``predictions/<condition>.jsonl``), with
per-pair outcomes chosen by the test so every verdict has a known truth."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import MEDICONFUSION_CATEGORIES, Benchmark
from robustness.metrics import score_pairs
from tests.helpers.records import make_pair_record

# Per-pair outcome codes: which answers the model gives for a pair with gold (g1, g2).
BOTH = "both"  # (g1, g2): both right
ONE = "one"  # (g1, g1): image 2 wrong, confused
NONE = "none"  # (g2, g1): both wrong, not confused
INVALID = "invalid"  # (g1, None): image 2 invalid


def write_benchmark(folder: Path, n_pairs: int = 176, prefix: str = "g") -> Path:
    """``folder/dataset.json`` with ``n_pairs`` pairs over the official categories."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {}
    cats = MEDICONFUSION_CATEGORIES
    for i in range(n_pairs):
        first = "A" if i % 2 == 0 else "B"
        records[f"{prefix}{i:04d}"] = make_pair_record(
            first, "B" if first == "A" else "A", (cats[i % len(cats)],),
            (cats[(i + i // len(cats)) % len(cats)],), 2 * i + 1, 2 * i + 2)
    path = folder / "dataset.json"
    path.write_text(json.dumps(records, indent=1))
    return path


def choices_for(bench: Benchmark, outcomes: Sequence[str],
                gold: Mapping[str, tuple[str, str]] | None = None
                ) -> dict[tuple[str, int], str | None]:
    """Choices producing ``outcomes[i]`` for the i-th pair (gold from ``gold`` or the benchmark)."""
    choices: dict[tuple[str, int], str | None] = {}
    for pair, code in zip(bench.pairs, outcomes, strict=True):
        g1, g2 = gold[pair.pair_id] if gold else pair.correct
        picks = {BOTH: (g1, g2), ONE: (g1, g1), NONE: (g2, g1), INVALID: (g1, None)}[code]
        choices[(pair.pair_id, 1)], choices[(pair.pair_id, 2)] = picks
    return choices


def outcomes(n: int, **runs: int) -> list[str]:
    """A list of ``n`` codes: ``outcomes(10, both=6, one=4)`` → 6 × both then 4 × one."""
    codes = [code for code, count in runs.items() for _ in range(count)]
    if len(codes) != n:
        raise ValueError(f"{len(codes)} codes for {n} pairs")
    return codes


def swapped_gold(bench: Benchmark) -> dict[str, tuple[str, str]]:
    """Gold labels when a probe swaps the two images (the truth swaps with them)."""
    return {p.pair_id: (p.correct[1], p.correct[0]) for p in bench}


def write_run(run_dir: Path, dataset: Path, conditions: Mapping[str, dict], *,
              model: str = "model", mode: str = "mc", seed: int | None = 0,
              with_correct: bool = True, bench_path: str | None = None) -> Path:
    """Write a run folder. ``conditions[name]`` = {"outcomes": codes, "probe": {...} | None,
    optional "gold": {pair_id: (g1, g2)}}; metrics in summary.json are computed from them."""
    bench = load_benchmark(dataset)
    (run_dir / "predictions").mkdir(parents=True, exist_ok=True)
    summary_conditions: dict[str, dict] = {}
    clean_report = None
    for name, spec in conditions.items():
        gold = spec.get("gold")
        choices = choices_for(bench, spec["outcomes"], gold)
        pairs = [replace(p, correct=gold[p.pair_id]) if gold else p for p in bench]
        report = score_pairs(pairs, choices)
        entry: dict = report.as_dict()
        if spec.get("probe") is not None or name != "clean":
            entry["probe"] = spec.get("probe")
        if name == "clean":
            clean_report = report
        elif clean_report is not None:
            entry["shift"] = {
                k: round(getattr(report.overall, k) - getattr(clean_report.overall, k), 2)
                for k in ("set_accuracy", "individual_accuracy", "confusion")}
        summary_conditions[name] = entry
        records = []
        for pair in pairs:
            for image in (1, 2):
                rec = {"pair_id": pair.pair_id, "image": image,
                       "choice": choices[(pair.pair_id, image)],
                       "displayed_choice": choices[(pair.pair_id, image)], "raw": {}}
                if with_correct:
                    rec["correct"] = pair.correct[image - 1]
                records.append(rec)
        safe = "".join(ch if ch.isalnum() or ch in "._-@=" else "_" for ch in name)  # as the runner
        (run_dir / "predictions" / f"{safe}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records))
    summary = {
        "model": model, "mode": mode, "dataset": "synthetic", "n_pairs": len(bench),
        "benchmark": {"name": "synthetic", "path": bench_path or str(dataset),
                      "content_hash": bench.content_hash, "n_pairs": len(bench)},
        "conditions": summary_conditions,
    }
    if seed is not None:
        summary["seed"] = seed
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir


def write_official(path: Path, bench: Benchmark, codes: Sequence[str]) -> Path:
    """An official MediConfusion results file (judge scores per option) giving ``codes``."""
    choices = choices_for(bench, codes)
    score = {"A": {"A": 9, "B": 1}, "B": {"A": 2, "B": 8}, None: {"A": 5, "B": 4}}
    results = {p.pair_id: {"answer": {"im1": score[choices[(p.pair_id, 1)]],
                                      "im2": score[choices[(p.pair_id, 2)]]},
                           "question": p.question}
               for p in bench}
    path.write_text(json.dumps(results))
    return path
