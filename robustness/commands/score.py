"""``robustness score``: score a predictions file against MediConfusion-format annotations."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from robustness.commands.args import OneLineArgumentParser
from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import Pair, pair_clusters
from robustness.errors import UserError
from robustness.metrics import ScoreReport, score_pairs
from robustness.run_outputs import strict_json
from robustness.predictions import complete_pairs, read_predictions
from robustness.stats import bootstrap_cis, clustered

TABLE_FORMAT = "{:<17} {:<10} {:<10} {:<17} {:<15} {:<15} {:<15} {:<15} {:<15}"
TABLE_HEADER = ("Category", "Total", "Set acc.", "Individual acc.", "Confused acc.",
                "Valid pairs", "Invalid acc.", "Precision", "Precision total")


def format_table(report: ScoreReport) -> str:
    """The official-style table: one row per category, then All (percentages to 2 decimals).

    Like the official ``print_score``, a row without valid pairs (or without valid unconfused
    pairs) shows the integer ``0`` for confusion (precision), not ``0.0``.
    """
    lines = [TABLE_FORMAT.format(*TABLE_HEADER)]
    rows = list(report.per_category.items()) + [("All", report.overall)]
    for name, m in rows:
        confusion = round(m.confusion, 2) if m.valid_pairs > 0 else 0
        precision = round(m.precision, 2) if m.unconfused_valid > 0 else 0
        lines.append(TABLE_FORMAT.format(
            name, m.n, round(m.set_accuracy, 2), round(m.individual_accuracy, 2),
            confusion, m.valid_pairs, round(m.invalid_rate, 2), precision, m.unconfused_valid))
    return "\n".join(lines)


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness score",
        description="Score predictions (JSON Lines or official MediConfusion results) against "
                    "annotations, with the official per-category weighting.",
        epilog="Random guessing gives set accuracy 25%% and confusion 50%%.")
    parser.add_argument("predictions", help="JSON Lines ({pair_id, image, choice}) or an official "
                                            "results file ({pair_id: {answer: {im1, im2}}})")
    parser.add_argument("--annotations", required=True, metavar="DATASET_JSON",
                        help="MediConfusion-format dataset.json")
    parser.add_argument("--threshold", type=float, default=3.0,
                        help="FF threshold tr for official results: A if A >= B + tr (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--uncertainty", choices=("clustered", "pairs"), default="clustered",
                        help="CIs over clusters of pairs sharing an image (default) or over pairs")
    return parser


def _check(threshold: float, resamples: int) -> None:
    if not math.isfinite(threshold) or threshold < 0:
        raise UserError(f"--threshold: expected a number >= 0, got {threshold}")
    if resamples < 1:
        raise UserError(f"--resamples: expected a positive integer, got {resamples}")


def _score(predictions: str | Path, annotations: str | Path,
           threshold: float) -> tuple[ScoreReport, list[Pair], int]:
    """The report over the pairs that have predictions, those pairs, and the benchmark size."""
    benchmark = load_benchmark(annotations)
    choices, _fmt = read_predictions(predictions, threshold=threshold,
                                     known_pairs={p.pair_id for p in benchmark})
    predicted = set(complete_pairs(predictions, choices))
    pairs = [p for p in benchmark if p.pair_id in predicted]
    return score_pairs(pairs, choices), pairs, len(benchmark)


def _as_json(report: ScoreReport, pairs: list[Pair], resamples: int, seed: int,
             uncertainty: str = "clustered") -> str:
    out = report.as_dict()
    clusters = pair_clusters(pairs) if uncertainty == "clustered" else None
    out["ci"] = bootstrap_cis([report.outcomes[p.pair_id] for p in pairs], resamples=resamples,
                              seed=seed, clusters=clusters)
    out["n_pairs"] = len(pairs)
    grouped = clustered(clusters) is not None
    out["uncertainty"] = {"method": "clustered" if grouped else "pairs",
                          "clusters": len(set(clusters)) if grouped else len(pairs)}
    return strict_json(out)


def score_file(predictions: str | Path, annotations: str | Path, *, threshold: float = 3.0,
               resamples: int = 2000, seed: int = 0,
               uncertainty: str = "clustered") -> dict[str, Any]:
    """The ``--json`` result: official metrics overall and per category, CIs (over clusters of
    pairs sharing an image, or over pairs), pairs scored."""
    _check(threshold, resamples)
    report, pairs, _total = _score(predictions, annotations, threshold)
    return json.loads(_as_json(report, pairs, resamples, seed, uncertainty))


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    _check(args.threshold, args.resamples)
    report, pairs, total = _score(args.predictions, args.annotations, args.threshold)
    if len(pairs) < total:
        print(f"robustness score: note: {len(pairs)} of {total} pairs have predictions; "
              "scoring those only", file=sys.stderr)
    print(_as_json(report, pairs, args.resamples, args.seed, args.uncertainty) if args.json
          else format_table(report))
    return 0
