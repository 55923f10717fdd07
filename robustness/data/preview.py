"""``robustness data preview``: a contact sheet of a benchmark folder, to look rather than read.

One row per pair: both images side by side (ground-truth mask outlines drawn in red when the
folder has masks, as phantom sets do), then the pair id, categories, question, both options and
the correct answer of each image. Works for the real MediConfusion folder too (no masks there).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import Pair
from robustness.errors import UserError

OUTLINE = (255, 48, 48)
INK = (20, 20, 20)
MUTED = (95, 95, 95)
ACCENT = (20, 70, 160)
BACKGROUND = (255, 255, 255)
PAD = 10


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="robustness data preview",
                     description="Draw a contact sheet (PNG) of the pairs in a benchmark folder: both images "
                                 "with mask outlines, question, options and correct answers.")
    parser.add_argument("folder", metavar="DIR", help="benchmark folder (with dataset.json and images/) "
                                                      "or a dataset.json path")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    parser.add_argument("--pairs", type=int, default=8, help="number of pairs, from the first (default 8)")
    parser.add_argument("--ids", metavar="LIST", help="comma-separated pair ids to show instead")
    parser.add_argument("--tile", type=int, default=180, help="image tile side in pixels (default 180)")
    parser.add_argument("--font-size", type=int, default=13, help="text size in pixels (default 13)")
    return parser


def load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font, scalable when FreeType is available (Pillow >= 10.1), bitmap otherwise."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # pragma: no cover - old Pillow or no FreeType
        return ImageFont.load_default()


# PIL's default font covers Latin-1 but not some typographic marks common in annotations.
_PLAIN = str.maketrans({"–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "→": "->",
                        "≥": ">=", "≤": "<=", "×": "x", "…": "..."})


def plain(text: str) -> str:
    """Text with typographic marks the default font lacks replaced by ASCII look-alikes."""
    return text.translate(_PLAIN)


def wrap(text: str, font, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if current and font.getlength(trial) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines or [""]


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels just outside ``mask`` that touch it: a 1-pixel contour that leaves the finding visible."""
    padded = np.pad(mask, 1)
    touching = (padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:])
    return touching & ~mask


def mask_path(pair: Pair, image: int, root: Path) -> Path | None:
    """The ground-truth mask of image 1 or 2: named in the phantom metadata, or ``masks/<local id>.png``."""
    meta = pair.extra.get("phantom") if isinstance(pair.extra.get("phantom"), dict) else None
    if meta and isinstance(meta.get(f"im_{image}"), dict) and meta[f"im_{image}"].get("mask"):
        candidate = root / meta[f"im_{image}"]["mask"]
    else:
        candidate = root / "masks" / f"{pair.local_ids[image - 1]}.png"
    return candidate if candidate.is_file() else None


def tile_image(path: Path, mask: Path | None, tile: int) -> Image.Image:
    """The image fitted into a ``tile`` square (aspect kept), with the mask contour drawn over it."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    scale = tile / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    if mask is not None:
        with Image.open(mask) as m:
            binary = np.asarray(m.convert("L").resize(size, Image.Resampling.NEAREST)) > 127
        pixels = np.asarray(rgb).copy()
        pixels[outline(binary)] = OUTLINE
        rgb = Image.fromarray(pixels)
    canvas = Image.new("RGB", (tile, tile), (0, 0, 0))
    canvas.paste(rgb, ((tile - size[0]) // 2, (tile - size[1]) // 2))
    return canvas


def _pair_lines(pair: Pair) -> list[tuple[str, tuple[int, int, int], str]]:
    """(text, colour, style) blocks describing one pair; style 'wrap' blocks are word-wrapped."""
    meta = pair.extra.get("phantom") if isinstance(pair.extra.get("phantom"), dict) else {}
    cats = " + ".join(dict.fromkeys(pair.categories[0] + pair.categories[1]))
    head = f"{pair.pair_id}  ·  {cats}"
    if meta:
        head += f"  ·  {meta.get('family', '')} ({meta.get('modality', '')})"
    return [
        (head, ACCENT, "wrap"),
        (f"Q: {pair.question}", INK, "wrap"),
        (f"A: {pair.options[0]}", INK, "wrap"),
        (f"B: {pair.options[1]}", INK, "wrap"),
        (f"Correct: image 1 -> {pair.correct[0]},  image 2 -> {pair.correct[1]}", ACCENT, "wrap"),
        (f"1: {pair.captions[0]}", MUTED, "wrap"),
        (f"2: {pair.captions[1]}", MUTED, "wrap"),
    ]


def contact_sheet(pairs: list[Pair], root: Path, *, tile: int = 180, font_size: int = 13,
                  title: str = "") -> Image.Image:
    """Render the sheet: one row per pair."""
    font = load_font(font_size)
    line_h = round(font_size * 1.35)
    text_w = max(360, round(tile * 2.4))
    label_h = line_h
    rows = []
    for pair in pairs:
        blocks = []
        for text, colour, _ in _pair_lines(pair):
            blocks += [(line, colour) for line in wrap(plain(text), font, text_w)]
        height = max(tile + label_h, len(blocks) * line_h) + PAD
        rows.append((pair, blocks, height))
    width = PAD * 4 + tile * 2 + text_w
    title_h = line_h + PAD if title else 0
    sheet = Image.new("RGB", (width, PAD + title_h + sum(h for _, _, h in rows)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = PAD
    if title:
        draw.text((PAD, y), plain(title), fill=INK, font=font)
        y += title_h
    for pair, blocks, height in rows:
        assert pair.images is not None
        for n in (1, 2):
            x = PAD + (n - 1) * (tile + PAD)
            sheet.paste(tile_image(pair.images[n - 1], mask_path(pair, n, root), tile), (x, y))
            draw.text((x, y + tile + 2), f"image {n}: {pair.correct[n - 1]}", fill=INK, font=font)
        tx = PAD * 3 + tile * 2
        for k, (line, colour) in enumerate(blocks):
            draw.text((tx, y + k * line_h), line, fill=colour, font=font)
        y += height
        draw.line((PAD, y - PAD // 2, width - PAD, y - PAD // 2), fill=(220, 220, 220))
    return sheet


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.pairs <= 0:
        raise UserError(f"--pairs: must be positive, got {args.pairs}")
    if not 32 <= args.tile <= 1024:
        raise UserError(f"--tile: must be in [32, 1024], got {args.tile}")
    if not 6 <= args.font_size <= 64:
        raise UserError(f"--font-size: must be in [6, 64], got {args.font_size}")
    source = Path(args.folder)
    annotations = source if source.suffix == ".json" else source / "dataset.json"
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: --out must name a .png file")
    benchmark = load_benchmark(annotations, require_images=True)
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
