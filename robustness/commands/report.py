"""``robustness report PATH... [--baseline PATH] --out FILE.html``: compare runs side by side.

Exit codes: 0 written, 2 bad input (a missing folder, runs on different benchmarks).
"""

from __future__ import annotations

from pathlib import Path

from robustness.commands.args import OneLineArgumentParser


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness report",
        description="Compare runs on the same benchmark in one self-contained HTML page (and its "
                    "markdown twin): every condition's metrics with intervals, robustness curves "
                    "overlaid, and the gate's paired verdict of each run against the baseline.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="run folders, their summary.json, or sweep folders (every job)")
    parser.add_argument("--baseline", metavar="PATH",
                        help="the run the others are gated against (default: the first)")
    parser.add_argument("--out", metavar="FILE.html", required=True,
                        help="where to write the page; the markdown goes beside it (.md)")
    parser.add_argument("--no-gate", action="store_true",
                        help="leave out the gate's paired verdicts (faster)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from robustness.errors import UserError
    from robustness.report.compare import write_comparison

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: expected a .html file")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    runs = write_comparison(args.paths, out, baseline=args.baseline, gate=not args.no_gate)
    print(f"compared {len(runs)} runs: {out} and {out.with_suffix('.md')}")
    return 0
