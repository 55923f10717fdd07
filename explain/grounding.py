"""Grounding scores: does the attribution sit on the finding? (phantom ground-truth masks)

Both scores read the *evidence* map: the absolute attribution by default (``sign="absolute"``:
where the answer is sensitive, whichever way — a finding that argues against the chosen option
is still where the model looked), or its positive part (``sign="positive"``: only evidence for
the target option).

* ``mask_energy_ratio`` = (evidence inside the mask / all evidence) / (mask area / image area).
  1.0 means no better than uniform; 3 means the mask holds three times its fair share.
* Pointing game (Zhang et al. 2016): the peak of the evidence map, smoothed with a Gaussian of
  σ = ``smooth`` × the image's longer side (suppresses single-pixel IG noise), is a hit when it
  lies within ``tolerance`` × the longer side of the mask (the original game allowed 15 px).

Only images whose finding is present count ("abnormal images"; phantom ``present: true``):
the mask of an absent finding marks where it would have been, not something to point at.
Maps and masks of different sizes are compared at the image's size (nearest neighbour).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from robustness.data.types import Benchmark, Pair
from robustness.errors import ConfigError

from explain.images import gaussian_blur, pool, resize_nearest

log = logging.getLogger(__name__)

SIGNS = ("absolute", "positive")


def check_sign(sign: str) -> str:
    if sign not in SIGNS:
        raise ConfigError(f"explain.sign: {sign!r} is not one of {', '.join(SIGNS)}")
    return sign


def evidence(attribution: np.ndarray, sign: str = "absolute") -> np.ndarray:
    """The non-negative evidence map of an H×W attribution."""
    a = np.asarray(attribution, dtype=np.float64)
    return np.abs(a) if check_sign(sign) == "absolute" else np.clip(a, 0.0, None)


def mask_energy_ratio(attribution: np.ndarray, mask: np.ndarray,
                      sign: str = "absolute") -> float | None:
    """Share of the evidence inside ``mask`` divided by the mask's share of the image; None
    when the mask or the evidence is empty."""
    e = evidence(attribution, sign)
    m = resize_nearest(np.asarray(mask, dtype=bool), e.shape)
    total = e.sum()
    area = m.mean()
    if total <= 0 or area <= 0:
        return None
    return float((e[m].sum() / total) / area)


def peak(attribution: np.ndarray, sign: str = "absolute", smooth: float = 0.02) -> tuple[int, int]:
    """(row, col) of the smoothed evidence maximum."""
    e = evidence(attribution, sign)
    sigma = smooth * max(e.shape)
    s = gaussian_blur(e, sigma) if sigma > 0 else e
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(s)), s.shape))  # type: ignore


def pointing_hit(attribution: np.ndarray, mask: np.ndarray, sign: str = "absolute",
                 smooth: float = 0.02, tolerance: float = 0.03) -> bool | None:
    """Whether the smoothed evidence peak is within ``tolerance`` × the longer side of the
    mask; None when the mask is empty or there is no evidence at all."""
    e = evidence(attribution, sign)
    m = resize_nearest(np.asarray(mask, dtype=bool), e.shape)
    if not m.any() or e.sum() <= 0:
        return None
    r, c = peak(attribution, sign, smooth)
    rows, cols = np.nonzero(m)
    distance = np.sqrt(((rows - r) ** 2 + (cols - c) ** 2).min())
    return bool(distance <= tolerance * max(e.shape))


def rank(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's ρ needs."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="mergesort")
    ranks = np.empty(len(flat), dtype=np.float64)
    ranks[order] = np.arange(len(flat), dtype=np.float64)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray, grid: int = 32) -> float | None:
    """Spearman rank correlation of two H×W maps after average pooling to a ``grid`` × ``grid``
    layout (maps of different sizes are brought to the first one's size); None if either map
    is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = resize_nearest(np.asarray(b, dtype=np.float64), a.shape)
    ra, rb = rank(pool(a, grid)), rank(pool(b, grid))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    if denom == 0:
        return None
    return float((ra * rb).sum() / denom)


# ----------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class Finding:
    """What the phantom annotation says about one image: family, presence and its mask."""

    family: str
    present: bool
    mask: np.ndarray | None  # bool H×W, None when no mask file exists

    @property
    def abnormal(self) -> bool:
        return self.present and self.mask is not None and bool(self.mask.any())


def _image_meta(pair: Pair, image_index: int) -> Mapping[str, Any] | None:
    phantom = pair.extra.get("phantom") if pair.extra else None
    if not isinstance(phantom, Mapping):
        return None
    meta = phantom.get(f"im_{image_index}")
    return meta if isinstance(meta, Mapping) else None


def finding(benchmark: Benchmark, pair: Pair, image_index: int) -> Finding | None:
    """The ground truth of image ``image_index`` of ``pair``, or None (no phantom metadata:
    real MediConfusion has no masks)."""
    meta = _image_meta(pair, image_index)
    if meta is None:
        return None
    phantom = pair.extra["phantom"]
    family = str(meta.get("family") or phantom.get("family") or "unknown")
    root = Path(benchmark.source).parent if benchmark.source else None
    mask = None
    names: Iterable[str] = [meta["mask"]] if meta.get("mask") else []
    if not names:
        names = [f"masks/{pair.image_keys[image_index - 1]}.png"]
    for name in names:
        path = Path(name) if Path(name).is_absolute() or root is None else root / name
        if path.is_file():
            from PIL import Image

            with Image.open(path) as img:
                mask = np.asarray(img.convert("L")) > 127
            break
        log.warning("phantom mask %s not found; image %s/%d is not grounded", path,
                    pair.pair_id, image_index)
    return Finding(family=family, present=bool(meta.get("present", True)), mask=mask)
