"""Overlays: both images of a pair side by side with their saliency, question, options, choices.

Each panel shows the image in grey with the evidence map (|attribution|, smoothed, scaled to its
99.5th percentile) as a heat layer from transparent (none) through purple and orange to pale
yellow (the most), the smoothed peak as a white ring and, on phantoms, the finding's mask as a
green outline (grey where the finding is absent: the place it takes in the other image). Under
each panel: the gold answer, the model's choice, the option whose margin is explained, and the
grounding scores. PIL only.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from explain.grounding import evidence, peak
from explain.images import gaussian_blur, resize_nearest

PANEL = 320  # display side of each image panel, pixels
MARGIN = 12
MASK_COLOUR = (40, 255, 120)  # a finding that is present
ABSENT_COLOUR = (150, 150, 150)  # where an absent finding would be (its pair partner's place)
# Perceptually ordered anchors (inferno-like): low evidence dark purple, high pale yellow.
ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
                   dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """RGB (float 0..255) of ``values`` in [0, 1] along :data:`ANCHORS`."""
    v = np.clip(values, 0, 1) * (len(ANCHORS) - 1)
    lo = np.floor(v).astype(int).clip(0, len(ANCHORS) - 2)
    t = (v - lo)[..., None]
    return ANCHORS[lo] * (1 - t) + ANCHORS[lo + 1] * t


@dataclass
class Panel:
    """One image of the pair with what to draw on and under it."""

    pixels: np.ndarray  # uint8 H×W or H×W×C
    attribution: np.ndarray  # H×W
    caption: Sequence[str]
    mask: np.ndarray | None = None
    present: bool = True  # whether the mask marks a present finding (green) or an absent one


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def heat_panel(pixels: np.ndarray, attribution: np.ndarray, mask: np.ndarray | None,
               sign: str = "absolute", smooth: float = 0.02, present: bool = True) -> np.ndarray:
    """The image with its evidence heat layer, peak ring and mask outline (uint8 RGB)."""
    from PIL import Image, ImageDraw

    h, w = pixels.shape[:2]
    scale = PANEL / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey = np.asarray(Image.fromarray(pixels).convert("L").resize(size, Image.BILINEAR),
                      dtype=np.float64)
    e = evidence(attribution, sign)
    e = gaussian_blur(e, smooth * max(e.shape)) if smooth > 0 else e
    top = np.percentile(e, 99.5)
    level = np.clip(e / top, 0, 1) if top > 0 else np.zeros_like(e)
    level = np.asarray(Image.fromarray((level * 255).astype(np.uint8)).resize(size, Image.BILINEAR),
                       dtype=np.float64) / 255
    alpha = (0.75 * level ** 0.8)[..., None]
    rgb = np.repeat(grey[..., None] * 0.85, 3, axis=-1) * (1 - alpha) + colormap(level) * alpha
    if mask is not None and mask.any():
        m = resize_nearest(mask.astype(bool), (size[1], size[0]))
        inner = m.copy()
        for axis in (0, 1):
            for shift in (1, -1, 2, -2):
                inner &= np.roll(m, shift, axis=axis)
        rgb[m & ~inner] = MASK_COLOUR if present else ABSENT_COLOUR
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    if e.max() > 0:
        r, c = peak(attribution, sign, smooth)
        cy, cx = (r + 0.5) * scale, (c + 0.5) * scale
        ImageDraw.Draw(image).ellipse([cx - 7, cy - 7, cx + 7, cy + 7], outline=(255, 255, 255),
                                      width=2)
    return np.asarray(image)


def render_pair(title: str, question: str, options: Sequence[str], panels: Sequence[Panel],
                sign: str = "absolute", smooth: float = 0.02) -> np.ndarray:
    """The overlay of a pair: a header (title, question, options) over side-by-side panels."""
    from PIL import Image, ImageDraw

    font, bold = _font(13), _font(15)
    tiles = [heat_panel(p.pixels, p.attribution, p.mask, sign, smooth, p.present)
             for p in panels]
    width = len(tiles) * PANEL + (len(tiles) + 1) * MARGIN
    chars = max(20, int(width / 7.2))
    header = [title] + textwrap.wrap(f"Q: {question}", chars) + [
        line for label, text in zip("AB", options) for line in textwrap.wrap(f"{label}: {text}",
                                                                              chars)]
    line_h = 18
    head_h = MARGIN + line_h * len(header) + 4
    per_panel = max(16, int(PANEL / 6.6))
    captions = [[w for line in p.caption for w in textwrap.wrap(line, per_panel)] for p in panels]
    cap_lines = max(len(c) for c in captions)
    height = head_h + PANEL + MARGIN + line_h * cap_lines + MARGIN
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = MARGIN
    for i, line in enumerate(header):
        draw.text((MARGIN, y), line, fill=(0, 0, 0), font=bold if i == 0 else font)
        y += line_h
    for k, (tile, caption) in enumerate(zip(tiles, captions)):
        x = MARGIN + k * (PANEL + MARGIN)
        th, tw = tile.shape[:2]
        canvas.paste(Image.fromarray(tile), (x + (PANEL - tw) // 2, head_h + (PANEL - th) // 2))
        cy = head_h + PANEL + 6
        for line in caption:
            draw.text((x, cy), line, fill=(0, 0, 0), font=font)
            cy += line_h
    return np.asarray(canvas)
