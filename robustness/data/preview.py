"""``robustness data preview``: a contact sheet of a benchmark folder, to look rather than read.

One row per pair: both images side by side (ground-truth mask outlines drawn in red when the
folder has masks, as phantom sets do), then the pair id, categories, question, both options and
the correct answer of each image. Works for the real MediConfusion folder too (no masks there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from robustness.data.types import Pair

OUTLINE = (255, 48, 48)
INK = (20, 20, 20)
MUTED = (95, 95, 95)
ACCENT = (20, 70, 160)
BACKGROUND = (255, 255, 255)
PAD = 10


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
        candidate = root / "masks" / f"{pair.image_keys[image - 1]}.png"
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


def _captions(pair: Pair) -> tuple[str, str]:
    return pair.mediconfusion.captions if pair.mediconfusion is not None else ("", "")


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
        (f"1: {_captions(pair)[0]}", MUTED, "wrap"),
        (f"2: {_captions(pair)[1]}", MUTED, "wrap"),
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
