"""``robustness cache {verify,compact} [DIR]``: check or rewrite the answer cache's files.

``verify`` reads every ``DIR/answers/*.jsonl`` and reports valid records, unreadable lines
(torn by a kill, not JSON, or not an answer) and duplicate keys; exit 0 when clean, 1 when it
found problems. ``compact`` rewrites each file atomically without them — every valid record
kept, the first copy of each key — under the lock running experiments use, so it is safe while
they run. DIR defaults to the experiments' ``cache.dir`` (``$ROBUSTNESS_CACHE_DIR`` or
``.cache/robustness``). Exit 2: bad arguments or a folder that is not a cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from robustness.commands.args import OneLineArgumentParser
from robustness.errors import UserError
from robustness.models.answer_store import FileReport, cache_files, compact_file, verify_file


def default_dir() -> Path:
    """The folder experiments use by default (``cache.dir``, i.e. ``paths.cache``)."""
    from robustness.api import compose

    return Path(os.path.expanduser(str(compose().cache.dir)))


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness cache",
        description="Check (verify) or rewrite without bad or duplicate lines (compact) the "
                    "answer cache files under DIR/answers/.")
    parser.add_argument("action", choices=("verify", "compact"))
    parser.add_argument("dir", nargs="?", metavar="DIR",
                        help="cache folder (default: cache.dir of the experiments)")
    return parser


def _line(report: FileReport, folder: Path) -> str:
    name = report.path.relative_to(folder) if report.path.is_relative_to(folder) else report.path
    text = (f"{name}: {report.records} answers, {report.bad_lines} unreadable line(s), "
            f"{report.duplicates} duplicate(s)")
    if report.conflicts:
        text += f" ({len(report.conflicts)} key(s) with differing copies; the first is kept)"
    return text


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    folder = Path(args.dir) if args.dir else default_dir()
    if not folder.is_dir():
        raise UserError(f"{folder}: no such cache folder")
    files = cache_files(folder)
    if not files:
        print(f"{folder}: no answer files")
        return 0
    problems = 0
    for path in files:
        try:
            report = compact_file(path) if args.action == "compact" else verify_file(path)
        except OSError as err:
            raise UserError(f"{path}: cannot {args.action} ({err.strerror or err})") from None
        problems += not report.clean
        print(_line(report, folder) + (" -> rewritten" if args.action == "compact"
                                        and not report.clean else ""))
    if args.action == "verify" and problems:
        print(f"{problems} of {len(files)} file(s) need `robustness cache compact`")
        return 1
    return 0
