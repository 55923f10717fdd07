"""``robustness gate BASELINE CANDIDATE``: fail CI when a candidate model is less robust.

Exit codes: 0 pass (warnings allowed), 1 regression, 2 bad input or mismatched runs.
"""

from __future__ import annotations

import sys

from robustness.commands.args import OneLineArgumentParser




def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness gate",
        description="Compare a candidate run with a baseline on the same pairs: set accuracy, "
                    "confusion and each probe's shift, with paired bootstrap CIs and exact "
                    "tests; exit 1 on a significant regression beyond the configured margins.")
    parser.add_argument("baseline", help="run directory written by robustness (or its "
                                         "summary.json), or an official results / JSON Lines file")
    parser.add_argument("candidate", help="the same, for the new model")
    parser.add_argument("--annotations", metavar="DATASET_JSON",
                        help="benchmark annotations (needed for official results files; "
                             "otherwise found through summary.json's benchmark path)")
    parser.add_argument("--config", metavar="FILE",
                        help="gate rules: a YAML file or a preset in conf/gate (e.g. strict); "
                             "default: conf/gate/default.yaml")
    parser.add_argument("--json", action="store_true", help="print the verdict and every check "
                                                           "as one JSON object")
    parser.add_argument("--markdown", metavar="FILE", help="write a pull-request comment summary")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per check")
    parser.add_argument("--threshold", type=float, default=3.0,
                        help="FF threshold for official results files (default 3)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from robustness.gate.comparison import compare_runs
    from robustness.gate.report import format_table, to_json, write_junit, write_markdown
    from robustness.gate.rules import load_rules

    rules = load_rules(args.config)
    result = compare_runs(args.baseline, args.candidate, rules=rules,
                          annotations=args.annotations, threshold=args.threshold)
    if args.markdown:
        write_markdown(result, args.markdown)
    if args.junit:
        write_junit(result, args.junit)
    if args.json:
        print(to_json(result))
    else:
        print(format_table(result))
    for note in result.notes if args.json else []:
        print(f"robustness gate: note: {note}", file=sys.stderr)
    return result.exit_code
