"""``robustness data check PATH [--json]``: validate a benchmark without running a model.

PATH is a table of pairs (.csv, .tsv, .jsonl, .json), a folder holding one, or a
MediConfusion-format folder (``dataset.json`` + ``images/``). Checks the schema, that every
image is readable (DICOM and 16-bit images converted as a run would), that answers are
opposite, duplicate images, and counts pairs per category. Exit 0 valid, 2 invalid with every
problem listed (one per line, naming file, row and field).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from robustness.commands.args import (OneLineArgumentParser, add_column_option,
                                      column_overrides)


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness data check",
        description="Validate a benchmark (table of pairs or MediConfusion folder) without "
                    "running a model; list every problem.")
    parser.add_argument("path", metavar="PATH", help="table, folder with one table, or "
                                                     "MediConfusion-format folder")
    add_column_option(parser, "map a field to your column name (repeatable), e.g. question=Frage")
    parser.add_argument("--window", help="DICOM/16-bit window: a preset (lung, bone, brain, …) "
                                         "or CENTRE,WIDTH")
    parser.add_argument("--frame", type=int, default=0, help="frame of multi-frame DICOMs")
    parser.add_argument("--allow-outside", action="store_true",
                        help="images may lie outside the table's folder")
    parser.add_argument("--cache-dir", default=".cache/robustness/pairs",
                        help="where converted images go (default .cache/robustness/pairs)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _window(value: str | None):
    if value is None or "," not in value:
        return value
    try:
        centre, width = (float(v) for v in value.split(","))
    except ValueError:
        from robustness.errors import UserError
        raise UserError(f"--window: expected a preset or CENTRE,WIDTH, got {value!r}") from None
    return [centre, width]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    path = Path(args.path)
    columns = column_overrides(args.column)
    if path.is_dir() and (path / "dataset.json").is_file():
        result = _check_mediconfusion(path)
    else:
        result = _check_table(path, columns, _window(args.window), args.frame,
                              args.allow_outside, Path(args.cache_dir))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(f"{result['path']}: {result['pairs']} pairs, {result['images']} images"
              + (f" ({result['converted']} converted to 8-bit)" if result.get("converted")
                 else ""))
        if result["categories"]:
            print("per category: " + ", ".join(f"{k} {v}" for k, v in result["categories"].items()))
        for note in result["notes"]:
            print(f"note: {note}")
        for problem in result["problems"]:
            print(problem)
        print("valid" if result["valid"] else f"invalid: {len(result['problems'])} problem(s)")
    return 0 if result["valid"] else 2


def _check_table(path: Path, columns, window, frame, allow_outside, cache_dir) -> dict:
    from robustness.data.pairs_table import build_pairs
    from robustness.data.user_pairs import PairsSource

    source = PairsSource(path, columns=columns, window=window, frame=frame,
                         allow_outside=allow_outside, cache_dir=cache_dir)
    check, prepared = source.check()
    categories: Counter[str] = Counter()
    if not check.problems:
        for pair in build_pairs(check, columns, prepared):
            categories.update(pair.pair_categories)
    return {"path": str(check.path), "valid": not check.problems, "pairs": len(check.rows),
            "images": len(prepared), "converted": len(source.converter.records),
            "categories": dict(categories), "problems": check.problems, "notes": check.notes}


def _check_mediconfusion(folder: Path) -> dict:
    from robustness.data.mediconfusion import load_benchmark
    from robustness.errors import UserError

    try:
        bench = load_benchmark(folder / "dataset.json", folder / "images", require_images=True,
                               verify_images=True)
    except UserError as err:
        return {"path": str(folder), "valid": False, "pairs": 0, "images": 0, "categories": {},
                "problems": [str(err)], "notes": []}
    counts: Counter[str] = Counter()
    for pair in bench:
        counts.update(pair.pair_categories)
    images = {p for pair in bench for p in (pair.images or ())}
    return {"path": str(folder), "valid": True, "pairs": len(bench), "images": len(images),
            "categories": dict(counts), "problems": [], "notes": []}
