"""Small numpy image helpers shared by the explainers: baselines, smoothing, pooling, resizing.

Pure numpy (no scipy, no torch) so grounding scores and overlays stay light to import.
"""

from __future__ import annotations

import numpy as np

from robustness.errors import ConfigError

BASELINES = ("black", "blur", "mean")


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian kernel of radius ⌈3σ⌉."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an H×W or H×W×C array (reflected borders), float64."""
    out = np.asarray(image, dtype=np.float64)
    if sigma <= 0:
        return out.copy()
    k = gaussian_kernel(sigma)
    r = len(k) // 2
    for axis in (0, 1):
        n = out.shape[axis]
        if n < 2:
            continue
        pad = [(0, 0)] * out.ndim
        pad[axis] = (min(r, n - 1), min(r, n - 1))
        padded = np.pad(out, pad, mode="reflect")
        rr = pad[axis][0]
        kk = k[r - rr: r + rr + 1]
        kk = kk / kk.sum()
        out = np.apply_along_axis(lambda v: np.convolve(v, kk, mode="valid"), axis, padded)
    return out


def baseline_image(pixels: np.ndarray, kind: str) -> np.ndarray:
    """The reference input an attribution compares against, same shape as ``pixels`` (float):
    ``black`` (all zero: no signal), ``blur`` (the image blurred with σ = 1/20 of its longer
    side: structure removed, intensities kept), ``mean`` (its mean grey level everywhere)."""
    arr = np.asarray(pixels, dtype=np.float64)
    if kind == "black":
        return np.zeros_like(arr)
    if kind == "mean":
        return np.full_like(arr, arr.mean())
    if kind == "blur":
        return gaussian_blur(arr, max(arr.shape[:2]) / 20.0)
    raise ConfigError(f"explain baseline: {kind!r} is not one of {', '.join(BASELINES)}")


def check_baseline(kind: str, kinds: tuple[str, ...] = BASELINES) -> str:
    """``kind`` if it is one of ``kinds`` (a method may accept more than the image baselines)."""
    if kind not in kinds:
        raise ConfigError(f"explain baseline: {kind!r} is not one of {', '.join(kinds)}")
    return kind


def pool(values: np.ndarray, grid: int) -> np.ndarray:
    """Average ``values`` (H×W) over a grid of at most ``grid`` × ``grid`` cells."""
    h, w = values.shape
    rows = np.linspace(0, h, min(grid, h) + 1).astype(int)
    cols = np.linspace(0, w, min(grid, w) + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(values, rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols))
    return sums / counts


def resize_nearest(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H×W array to ``shape`` (maps and masks of other sizes)."""
    h, w = values.shape[:2]
    if (h, w) == tuple(shape):
        return values
    rows = np.minimum((np.arange(shape[0]) + 0.5) * h / shape[0], h - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * w / shape[1], w - 1).astype(int)
    return values[rows][:, cols]
