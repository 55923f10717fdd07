"""Numpy drawing primitives: soft-edged shapes evaluated only inside their bounding box, and
smooth noise fields for anatomical texture and acquisition noise.

Geometry lives in normalised coordinates: ``x`` grows to the image right, ``y`` grows down, both
span ``[-1, 1]`` across the image, so a phantom drawn at 224 or 512 pixels has the same anatomy.
Edges are given in pixels so that shapes stay crisp (or soft) by the same amount at any size.
Every shape has a compact support (the soft edge ends a fixed distance outside the outline), so
the pixels a finding can change are exactly known; the ground-truth masks rely on that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

Point = tuple[float, float]


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 (x <= edge0) to 1 (x >= edge1)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class Grid:
    """Pixel centres of a square image in normalised coordinates.

    A grid also remembers the stamps of the shapes drawn on it: both images of a pair are drawn
    on one grid from the same anatomy, so the second image reuses every shared shape.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.stamps: dict[object, "Stamp | None"] = {}
        self.px = 2.0 / size  # one pixel in normalised units
        self.coords = ((np.arange(size, dtype=np.float32) + 0.5) * self.px - 1.0).astype(np.float32)

    def window(self, x0: float, x1: float, y0: float, y1: float):
        """Slices and coordinate vectors covering the normalised box, or None when off-image."""
        c0 = max(0, int(math.floor((x0 + 1.0) / self.px)))
        c1 = min(self.size, int(math.ceil((x1 + 1.0) / self.px)) + 1)
        r0 = max(0, int(math.floor((y0 + 1.0) / self.px)))
        r1 = min(self.size, int(math.ceil((y1 + 1.0) / self.px)) + 1)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1), self.coords[None, c0:c1], self.coords[r0:r1, None]

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        """Normalised point to (column, row) pixel coordinates."""
        return (x + 1.0) / self.px - 0.5, (y + 1.0) / self.px - 0.5

    def full(self) -> tuple[np.ndarray, np.ndarray]:
        """Broadcastable x (1, S) and y (S, 1) over the whole image."""
        return self.coords[None, :], self.coords[:, None]


@dataclass(frozen=True)
class Stamp:
    """Coverage ``alpha`` in [0, 1] of a shape over a window of the image."""

    rows: slice
    cols: slice
    alpha: np.ndarray

    def add(self, image: np.ndarray, amount: float) -> None:
        """Add ``amount`` weighted by coverage (densities that superimpose, e.g. bone over lung)."""
        image[self.rows, self.cols] += self.alpha * amount

    def paint(self, image: np.ndarray, value: float) -> None:
        """Blend towards ``value`` by coverage (tissue that replaces what was there)."""
        region = image[self.rows, self.cols]
        region += self.alpha * (value - region)

    def maximum(self, image: np.ndarray, value: float = 1.0) -> None:
        """Keep the larger of the image and coverage × value (opacity of overlapping vessels)."""
        region = image[self.rows, self.cols]
        np.maximum(region, self.alpha * value, out=region, where=self.alpha > 0)  # untouched outside the shape

    def full(self, size: int) -> np.ndarray:
        """Coverage over the whole image."""
        out = np.zeros((size, size), np.float32)
        out[self.rows, self.cols] = self.alpha
        return out

    def support_into(self, mask: np.ndarray) -> None:
        """Mark every pixel the shape can touch."""
        mask[self.rows, self.cols] |= self.alpha > 0


def cached(method):
    """Memoise a shape's ``stamp(grid)`` on the grid (shapes are frozen, stamps never mutated)."""

    def stamp(self, grid: Grid) -> "Stamp | None":
        try:
            return grid.stamps[self]
        except KeyError:
            result = grid.stamps[self] = method(self, grid)
            return result

    stamp.__doc__ = method.__doc__
    return stamp


class Shape(Protocol):
    """Anything that can be rasterised to a :class:`Stamp`."""

    def stamp(self, grid: Grid) -> Stamp | None: ...


def coverage(shape: Shape, grid: Grid) -> np.ndarray:
    """Full-image coverage of ``shape`` (zeros when it is off-image)."""
    stamp = shape.stamp(grid)
    return np.zeros((grid.size, grid.size), np.float32) if stamp is None else stamp.full(grid.size)


def support(shapes: Sequence[Shape], grid: Grid) -> np.ndarray:
    """Boolean union of the supports of ``shapes``."""
    mask = np.zeros((grid.size, grid.size), bool)
    for shape in shapes:
        stamp = shape.stamp(grid)
        if stamp is not None:
            stamp.support_into(mask)
    return mask


def _edge_alpha(distance: np.ndarray, edge_px: float, grid: Grid) -> np.ndarray:
    """Coverage from a signed distance (negative inside) with a soft edge of ``edge_px`` pixels."""
    half = max(edge_px, 0.35) * grid.px
    return (1.0 - smoothstep(-half, half, distance)).astype(np.float32)


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    edge: float = 1.0

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        pad = max(self.rx, self.ry) + self.edge * grid.px
        win = grid.window(self.cx - pad, self.cx + pad, self.cy - pad, self.cy + pad)
        if win is None:
            return None
        rows, cols, x, y = win
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = x - self.cx, y - self.cy
        u, v = dx * c + dy * s, -dx * s + dy * c
        k0 = np.sqrt((u / self.rx) ** 2 + (v / self.ry) ** 2)
        k1 = np.sqrt((u / self.rx**2) ** 2 + (v / self.ry**2) ** 2)
        dist = np.where(k1 > 1e-9, k0 * (k0 - 1.0) / np.maximum(k1, 1e-9), -min(self.rx, self.ry))
        return Stamp(rows, cols, _edge_alpha(dist, self.edge, grid))


@dataclass(frozen=True)
class Ring:
    """An elliptical band of ``thickness`` centred on the ellipse outline (skull, cortex)."""

    cx: float
    cy: float
    rx: float
    ry: float
    thickness: float
    angle: float = 0.0
    edge: float = 1.0

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        inner = Ellipse(self.cx, self.cy, self.rx, self.ry, self.angle)
        pad = max(self.rx, self.ry) + self.thickness / 2 + self.edge * grid.px
        win = grid.window(self.cx - pad, self.cx + pad, self.cy - pad, self.cy + pad)
        if win is None:
            return None
        rows, cols, x, y = win
        c, s = math.cos(inner.angle), math.sin(inner.angle)
        dx, dy = x - self.cx, y - self.cy
        u, v = dx * c + dy * s, -dx * s + dy * c
        k0 = np.sqrt((u / self.rx) ** 2 + (v / self.ry) ** 2)
        k1 = np.sqrt((u / self.rx**2) ** 2 + (v / self.ry**2) ** 2)
        dist = np.where(k1 > 1e-9, k0 * (k0 - 1.0) / np.maximum(k1, 1e-9), -min(self.rx, self.ry))
        return Stamp(rows, cols, _edge_alpha(np.abs(dist) - self.thickness / 2, self.edge, grid))


def _segment_distance(x, y, p0: Point, p1: Point, r0: float, r1: float) -> np.ndarray:
    """Signed distance to a tapered capsule from p0 (radius r0) to p1 (radius r1)."""
    ax, ay = p0
    bx, by = p1
    vx, vy = bx - ax, by - ay
    length2 = vx * vx + vy * vy
    px, py = x - ax, y - ay
    t = np.clip((px * vx + py * vy) / length2, 0.0, 1.0) if length2 > 0 else np.zeros_like(px * py)
    dx, dy = px - t * vx, py - t * vy
    return np.sqrt(dx * dx + dy * dy) - (r0 + (r1 - r0) * t)


@dataclass(frozen=True)
class Capsule:
    """A line segment with round caps whose radius tapers from r0 to r1 (vessel, rib, wire)."""

    p0: Point
    p1: Point
    r0: float
    r1: float
    edge: float = 1.0

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        pad = max(self.r0, self.r1) + self.edge * grid.px
        win = grid.window(min(self.p0[0], self.p1[0]) - pad, max(self.p0[0], self.p1[0]) + pad,
                          min(self.p0[1], self.p1[1]) - pad, max(self.p0[1], self.p1[1]) + pad)
        if win is None:
            return None
        rows, cols, x, y = win
        dist = _segment_distance(x, y, self.p0, self.p1, self.r0, self.r1)
        return Stamp(rows, cols, _edge_alpha(dist, self.edge, grid))


@dataclass(frozen=True)
class Polyline:
    """Connected capsules through ``points``; radii taper linearly from ``r0`` to ``r1`` along the
    points, unless ``radii`` gives one radius per point."""

    points: tuple[Point, ...]
    r0: float = 0.0
    r1: float | None = None
    edge: float = 1.0
    radii: tuple[float, ...] | None = None

    def point_radii(self) -> tuple[float, ...]:
        if self.radii is not None:
            return self.radii
        r1 = self.r0 if self.r1 is None else self.r1
        n = len(self.points) - 1
        return tuple(self.r0 + (r1 - self.r0) * i / n for i in range(n + 1))

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        radii = self.point_radii()
        pad = max(radii) + self.edge * grid.px
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        win = grid.window(min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad)
        if win is None:
            return None
        rows, cols, _, _ = win
        dist = np.full((rows.stop - rows.start, cols.stop - cols.start), 1.0, np.float32)
        for i in range(len(self.points) - 1):  # each segment only over its own box: long curves stay cheap
            (ax, ay), (bx, by) = self.points[i], self.points[i + 1]
            seg = grid.window(min(ax, bx) - pad, max(ax, bx) + pad, min(ay, by) - pad, max(ay, by) + pad)
            if seg is None:
                continue
            srows, scols, x, y = seg
            region = dist[srows.start - rows.start:srows.stop - rows.start,
                          scols.start - cols.start:scols.stop - cols.start]
            np.minimum(region, _segment_distance(x, y, (ax, ay), (bx, by), radii[i], radii[i + 1]), out=region)
        return Stamp(rows, cols, _edge_alpha(dist, self.edge, grid))


@dataclass(frozen=True)
class Quad:
    """A convex polygon (vertebral body, wedge) with softly rounded corners by ``rounding``."""

    corners: tuple[Point, ...]
    rounding: float = 0.0
    edge: float = 1.0

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        xs = [p[0] for p in self.corners]
        ys = [p[1] for p in self.corners]
        pad = self.edge * grid.px + self.rounding
        win = grid.window(min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad)
        if win is None:
            return None
        rows, cols, x, y = win
        cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
        # Shrink by the rounding radius, then take the distance to the shrunk polygon (max of edge
        # half-plane distances) minus the radius: a convex polygon with rounded corners.
        dist = None
        n = len(self.corners)
        for i in range(n):
            (ax, ay), (bx, by) = self.corners[i], self.corners[(i + 1) % n]
            ex, ey = bx - ax, by - ay
            norm = math.hypot(ex, ey) or 1.0
            nx, ny = ey / norm, -ex / norm
            if (cx - ax) * nx + (cy - ay) * ny > 0:  # make the normal point outwards
                nx, ny = -nx, -ny
            d = (x - ax) * nx + (y - ay) * ny
            dist = d if dist is None else np.maximum(dist, d)
        return Stamp(rows, cols, _edge_alpha(dist, self.edge, grid))


@dataclass(frozen=True)
class RoundedRect:
    """A rectangle of half sizes (hw, hh) with corner radius, rotated by ``angle``."""

    cx: float
    cy: float
    hw: float
    hh: float
    radius: float = 0.0
    angle: float = 0.0
    edge: float = 1.0

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        pad = math.hypot(self.hw, self.hh) + self.edge * grid.px
        win = grid.window(self.cx - pad, self.cx + pad, self.cy - pad, self.cy + pad)
        if win is None:
            return None
        rows, cols, x, y = win
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = x - self.cx, y - self.cy
        u, v = np.abs(dx * c + dy * s), np.abs(-dx * s + dy * c)
        r = min(self.radius, self.hw, self.hh)
        qx, qy = u - (self.hw - r), v - (self.hh - r)
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
        inside = np.minimum(np.maximum(qx, qy), 0)
        return Stamp(rows, cols, _edge_alpha(outside + inside - r, self.edge, grid))


@dataclass(frozen=True)
class Striped:
    """A shape whose coverage is cut into struts: threads (one family) or a mesh (two, crossed).

    ``period`` is in normalised units, ``angle`` is the stripe direction, ``duty`` the fraction of
    each period that stays opaque.
    """

    shape: Shape
    period: float
    angle: float
    duty: float = 0.35
    crossed: bool = False

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        base = self.shape.stamp(grid)
        if base is None:
            return None
        x = grid.coords[None, base.cols]
        y = grid.coords[base.rows, None]
        pattern = self._stripes(x, y, self.angle)
        if self.crossed:
            pattern = np.maximum(pattern, self._stripes(x, y, -self.angle))
        return Stamp(base.rows, base.cols, (base.alpha * pattern).astype(np.float32))

    def _stripes(self, x, y, angle: float) -> np.ndarray:
        phase = (x * math.cos(angle) + y * math.sin(angle)) / self.period
        frac = np.abs(phase - np.floor(phase) - 0.5) * 2.0  # 0 at strut centre, 1 between struts
        return 1.0 - smoothstep(self.duty * 0.6, self.duty * 1.4, 1.0 - frac)


@dataclass(frozen=True)
class Union:
    """Coverage = the maximum of several shapes (one object made of parts)."""

    parts: tuple[Shape, ...]

    @cached
    def stamp(self, grid: Grid) -> Stamp | None:
        stamps = [s for s in (p.stamp(grid) for p in self.parts) if s is not None]
        if not stamps:
            return None
        r0 = min(s.rows.start for s in stamps)
        r1 = max(s.rows.stop for s in stamps)
        c0 = min(s.cols.start for s in stamps)
        c1 = max(s.cols.stop for s in stamps)
        alpha = np.zeros((r1 - r0, c1 - c0), np.float32)
        for s in stamps:
            region = alpha[s.rows.start - r0:s.rows.stop - r0, s.cols.start - c0:s.cols.stop - c0]
            np.maximum(region, s.alpha, out=region)
        return Stamp(slice(r0, r1), slice(c0, c1), alpha)


# --- noise fields -------------------------------------------------------------------------------

def _interpolate(coarse: np.ndarray, size: int) -> np.ndarray:
    """Smooth (Hermite) bilinear upsampling of a (c+1, c+1) lattice to (size, size)."""
    cells = coarse.shape[0] - 1
    t = (np.arange(size, dtype=np.float32) + 0.5) * (cells / size)
    i = np.minimum(t.astype(np.int32), cells - 1)
    f = t - i
    f = f * f * (3.0 - 2.0 * f)
    rows = coarse[i] * (1.0 - f)[:, None] + coarse[i + 1] * f[:, None]
    return rows[:, i] * (1.0 - f)[None, :] + rows[:, i + 1] * f[None, :]


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 3,
                  persistence: float = 0.5) -> np.ndarray:
    """Zero-mean, unit-variance smooth noise whose coarsest features span ``1/cells`` of the image."""
    total = np.zeros((size, size), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        n = min(cells * 2**octave, size)
        lattice = rng.standard_normal((n + 1, n + 1)).astype(np.float32)
        total += amplitude * _interpolate(lattice, size)
        amplitude *= persistence
    total -= total.mean()
    return total / (total.std() + 1e-6)


def grain(rng: np.random.Generator, size: int, correlation: float = 0.5) -> np.ndarray:
    """Unit-variance acquisition noise; ``correlation`` blends in a 3×3-smoothed copy (detector blur)."""
    white = rng.standard_normal((size, size)).astype(np.float32)
    if correlation <= 0:
        return white
    padded = np.pad(white, 1, mode="reflect")
    smooth = sum(padded[r:r + size, c:c + size] for r in range(3) for c in range(3)) / 9.0
    mixed = (1.0 - correlation) * white + correlation * smooth * 3.0  # smooth has std 1/3
    return mixed / (mixed.std() + 1e-6)
