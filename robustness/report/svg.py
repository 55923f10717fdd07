"""Inline SVG charts (line with interval bands, bars with error bars, heatmap): no script, no
font or network request, so a report stays one self-contained file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FONT = "font-family:system-ui,sans-serif;font-size:11px"


@dataclass(frozen=True)
class Series:
    """One line: points (x, y, lo, hi) with ``lo``/``hi`` ``None`` where there is no interval."""

    label: str
    points: Sequence[tuple[float, float, float | None, float | None]]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _num(v: float) -> str:
    return f"{v:g}"


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               y_range: tuple[float, float] | None = (0, 100), width: int = 420,
               height: int = 260) -> str:
    """Lines with shaded interval bands, one colour per series, a legend below the title."""
    left, right, top, bottom = 46, 12, 34 + 14 * ((len(series) + 2) // 3), 36
    xs = [p[0] for s in series for p in s.points] or [0.0, 1.0]
    ys = [v for s in series for p in s.points for v in (p[1], p[2], p[3]) if v is not None]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = y_range if y_range else (min(ys or [0]), max(ys or [1]))
    h = height + top - 34
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda y: h - bottom - (y - y0) / ((y1 - y0) or 1) * (h - top - bottom)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" width="{width}" '
           f'height="{h}" role="img" aria-label="{escape(title)}" style="{FONT}">',
           f'<text x="{width / 2}" y="14" text-anchor="middle" font-weight="bold">'
           f'{escape(title)}</text>']
    for i, s in enumerate(series):
        lx, ly = 8 + (i % 3) * (width - 16) / 3, 30 + 14 * (i // 3)
        out.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/><text x="{lx + 14}" y="{ly - 4}">'
                   f'{escape(s.label[:40])}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
                   f'stroke="#e5e5e5"/><text x="{left - 4}" y="{sy(t) + 4:.1f}" '
                   f'text-anchor="end">{_num(t)}</text>')
    for t in sorted(set(xs)):
        out.append(f'<text x="{sx(t):.1f}" y="{h - bottom + 14}" text-anchor="middle">'
                   f'{_num(t)}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{h - 6}" text-anchor="middle">'
               f'{escape(x_label)}</text><text transform="translate(11 {(top + h - bottom) / 2}) '
               f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = sorted(s.points)
        band = [(x, lo, hi) for x, _, lo, hi in pts if lo is not None and hi is not None]
        if len(band) >= 2:
            poly = [f"{sx(x):.1f},{sy(hi):.1f}" for x, _, hi in band]
            poly += [f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _ in reversed(band)]
            out.append(f'<polygon points="{" ".join(poly)}" fill="{color}" fill-opacity="0.15"/>')
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, lo, hi in pts:
            tip = f"{s.label}: {_num(x)} → {y:.2f}" + (
                f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "")
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                       f'<title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(bars: Sequence[tuple[str, float, float | None, float | None]], *, title: str,
              x_label: str, centre: float = 0.0, width: int = 420) -> str:
    """Horizontal bars from ``centre`` (0 for shifts, 50 for position bias) with error bars."""
    row, left, top = 18, 150, 24
    height = top + row * max(len(bars), 1) + 34
    vals = [v for _, value, lo, hi in bars for v in (value, lo, hi) if v is not None] + [centre]
    v0, v1 = min(vals), max(vals)
    pad = (v1 - v0) * 0.08 or 1
    v0, v1 = v0 - pad, v1 + pad
    sx = lambda v: left + (v - v0) / (v1 - v0) * (width - left - 12)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
           f'style="{FONT}"><text x="{width / 2}" y="14" text-anchor="middle" '
           f'font-weight="bold">{escape(title)}</text>']
    base = top + row * len(bars)
    for t in _ticks(v0, v1):
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{base}" '
                   f'stroke="#e5e5e5"/><text x="{sx(t):.1f}" y="{base + 14}" '
                   f'text-anchor="middle">{_num(t)}</text>')
    out.append(f'<line x1="{sx(centre):.1f}" x2="{sx(centre):.1f}" y1="{top}" y2="{base}" '
               f'stroke="#333"/><text x="{(left + width) / 2}" y="{height - 4}" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    for i, (label, value, lo, hi) in enumerate(bars):
        y = top + i * row
        a, b = sorted((sx(centre), sx(value)))
        color = PALETTE[1] if value < centre else PALETTE[0]
        tip = f"{label}: {value:+.2f}" if centre == 0 else f"{label}: {value:.2f}"
        if lo is not None and hi is not None:
            tip += f" [{lo:.2f}, {hi:.2f}]"
        out.append(f'<text x="{left - 4}" y="{y + 12}" text-anchor="end">{escape(label[:26])}'
                   f'</text><rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 1):.1f}" '
                   f'height="{row - 6}" fill="{color}" fill-opacity="0.75"><title>'
                   f'{escape(tip)}</title></rect>')
        if lo is not None and hi is not None:
            out.append(f'<line x1="{sx(lo):.1f}" x2="{sx(hi):.1f}" y1="{y + row / 2}" '
                       f'y2="{y + row / 2}" stroke="#111" stroke-width="1.5"/>')
    out.append("</svg>")
    return "".join(out)


def _heat(value: float, lo: float, hi: float) -> str:
    t = 0.5 if hi <= lo else max(0.0, min(1.0, (value - lo) / (hi - lo)))
    red, green, blue = (int(215 + (26 - 215) * t), int(48 + (150 - 48) * t), int(39 + (65 - 39) * t))
    return f"rgb({red},{green},{blue})"


def heatmap(rows: Sequence[str], columns: Sequence[str],
            values: Sequence[Sequence[float | None]], *, title: str,
            value_range: tuple[float, float] = (0, 100)) -> str:
    """Rows × columns of values as coloured cells with the value written in each."""
    cell_w, cell_h, left, top = 62, 20, 160, 96
    width, height = left + cell_w * len(columns) + 90, top + cell_h * len(rows) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
           f'style="{FONT}"><text x="8" y="14" font-weight="bold">{escape(title)}</text>']
    for j, col in enumerate(columns):
        x = left + j * cell_w + cell_w / 2
        out.append(f'<text transform="translate({x:.1f} {top - 6}) rotate(-40)">'
                   f'{escape(col[:22])}</text>')
    for i, name in enumerate(rows):
        y = top + i * cell_h
        out.append(f'<text x="{left - 4}" y="{y + 14}" text-anchor="end">{escape(name[:28])}'
                   f'</text>')
        for j, value in enumerate(values[i]):
            x = left + j * cell_w
            if value is None:
                out.append(f'<rect x="{x}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" '
                           f'fill="#f0f0f0"/>')
                continue
            out.append(f'<rect x="{x}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" '
                       f'fill="{_heat(value, *value_range)}"><title>{escape(name)} · '
                       f'{escape(columns[j])}: {value:.2f}</title></rect><text x="{x + cell_w / 2}" '
                       f'y="{y + 14}" text-anchor="middle" fill="#fff">{value:.1f}</text>')
    out.append("</svg>")
    return "".join(out)
