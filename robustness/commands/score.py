"""``robustness score``: score a predictions file against MediConfusion-format annotations."""

from __future__ import annotations

import math
import sys

from robustness.commands.args import OneLineArgumentParser
from robustness.data.mediconfusion import load_benchmark
from robustness.errors import UserError
from robustness.metrics import ScoreReport, score_pairs
from robustness.run_outputs import strict_json
from robustness.predictions import complete_pairs, read_predictions
from robustness.stats import bootstrap_cis

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
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not math.isfinite(args.threshold) or args.threshold < 0:
        raise UserError(f"--threshold: expected a number >= 0, got {args.threshold}")
    if args.resamples < 1:
        raise UserError(f"--resamples: expected a positive integer, got {args.resamples}")
    benchmark = load_benchmark(args.annotations)
    choices, _fmt = read_predictions(args.predictions, threshold=args.threshold,
                                     known_pairs={p.pair_id for p in benchmark})
    predicted = set(complete_pairs(args.predictions, choices))
    pairs = [p for p in benchmark if p.pair_id in predicted]
    if len(pairs) < len(benchmark):
        print(f"robustness score: note: {len(pairs)} of {len(benchmark)} pairs have predictions; "
              "scoring those only", file=sys.stderr)
    report = score_pairs(pairs, choices)
    if args.json:
        out = report.as_dict()
        out["ci"] = bootstrap_cis([report.outcomes[p.pair_id] for p in pairs],
                                  resamples=args.resamples, seed=args.seed)
        out["n_pairs"] = len(pairs)
        print(strict_json(out))
    else:
        print(format_table(report))
    return 0
