"""``robustness data preview``: draw a contact sheet (PNG) of a benchmark folder's pairs."""

from __future__ import annotations

from pathlib import Path

from robustness.commands.args import (OneLineArgumentParser, add_column_option,
                                      column_overrides)
from robustness.data.mediconfusion import load_benchmark
from robustness.data.preview import contact_sheet
from robustness.errors import UserError


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness data preview",
        description="Draw a contact sheet (PNG) of the pairs in a benchmark folder: both images "
                    "with mask outlines, question, options and correct answers.")
    parser.add_argument("folder", metavar="PATH", help="benchmark folder (with dataset.json and "
                                                       "images/), a dataset.json path, or a table "
                                                       "of pairs (.csv, .tsv, .jsonl, .json), or hf:<hub id or dataset folder>")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    add_column_option(parser, "your column name of a field, for tables and HF datasets "
                              "(repeatable), e.g. question=Frage")
    parser.add_argument("--split", default="test",
                        help="for a Hugging Face dataset (hf:<hub id or folder>): the split")
    parser.add_argument("--pairs", type=int, default=8, help="number of pairs, from the first (default 8)")
    parser.add_argument("--ids", metavar="LIST", help="comma-separated pair ids to show instead")
    parser.add_argument("--tile", type=int, default=180, help="image tile side in pixels (default 180)")
    parser.add_argument("--font-size", type=int, default=13, help="text size in pixels (default 13)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.pairs <= 0:
        raise UserError(f"--pairs: must be positive, got {args.pairs}")
    if not 32 <= args.tile <= 1024:
        raise UserError(f"--tile: must be in [32, 1024], got {args.tile}")
    if not 6 <= args.font_size <= 64:
        raise UserError(f"--font-size: must be in [6, 64], got {args.font_size}")
    source = Path(args.folder)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: --out must name a .png file")
    annotations = source if source.name == "dataset.json" else source / "dataset.json"
    if args.folder.startswith("hf:") or (source / "dataset_dict.json").is_file() or \
            (source / "state.json").is_file():  # a Hugging Face dataset of pairs
        from robustness.data.user_pairs import HFSource

        benchmark = HFSource(args.folder.removeprefix("hf:"), split=args.split,
                             columns=column_overrides(args.column)).load()
        annotations = benchmark.source or source
    elif annotations.is_file():
        benchmark = load_benchmark(annotations, require_images=True)
    else:  # a table of the user's own pairs (DICOM and 16-bit images converted as in a run)
        from robustness.data.pairs_table import TABLE_SUFFIXES
        from robustness.data.user_pairs import PairsSource

        if source.is_dir() and not any(p.suffix.lower() in TABLE_SUFFIXES
                                       for p in source.iterdir()):
            raise UserError(f"{source}: neither a benchmark folder (no dataset.json) nor a "
                            "folder with a table of pairs (.csv, .tsv, .jsonl, .json)")
        benchmark = PairsSource(source, columns=column_overrides(args.column)).load()
        annotations = benchmark.source or source
    if args.ids:
        wanted = [i.strip() for i in args.ids.split(",") if i.strip()]
        missing = [i for i in wanted if i not in benchmark]
        if missing:
            raise UserError(f"{annotations}: unknown pair id(s) {', '.join(missing)}")
        pairs = [benchmark.pair(i) for i in wanted]
    else:
        pairs = list(benchmark)[:args.pairs]
    title = f"{annotations}  ·  {len(pairs)} of {len(benchmark)} pairs  ·  red: ground-truth mask"
    sheet = contact_sheet(pairs, annotations.parent, tile=args.tile, font_size=args.font_size, title=title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out, format="PNG", optimize=True)
    except OSError as err:
        raise UserError(f"{out}: cannot write ({err.strerror or err})") from None
    print(f"wrote {out} ({len(pairs)} pairs, {sheet.width}x{sheet.height})")
    return 0
