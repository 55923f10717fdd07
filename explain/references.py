"""Reference images for the ``dataset`` baseline: Integrated Gradients' expected gradients and
occlusion's fill (the references' mean image at the occluded place).

Integrated Gradients explains the difference between the input and its baseline. A black image
makes that difference "everything bright": anatomy rims, shoulders and side markers win the
attribution peak although occlusion shows the answer rests on the finding. Expected gradients
(Erion et al. 2021; Sturmfels et al. 2020, "Visualizing the impact of feature attribution
baselines") instead averages IG over baselines drawn from the data, so shared anatomy cancels
and what sets this image apart carries the attribution.

:class:`ReferencePool` draws those baselines from the benchmark being explained:

* from the same *group* as the explained pair (phantom modality; on real data the pair's first
  category), so the references show comparable anatomy;
* never from the pair being explained: its partner image differs from it exactly where the
  answer flips, which would hand the method the answer (the rule few-shot examples follow);
* deterministically: the draw depends only on the pair id, the image index and ``seed``;
* resized and converted to the explained image's shape (real images differ in size).
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from robustness.data.types import Benchmark, Pair
from robustness.errors import ConfigError


def reference_group(pair: Pair) -> str:
    """Which references suit ``pair``: its phantom modality, else its first category."""
    phantom = pair.extra.get("phantom") if pair.extra else None
    if isinstance(phantom, Mapping) and phantom.get("modality"):
        return str(phantom["modality"])
    return pair.categories[0][0] if pair.categories and pair.categories[0] else ""


def fit_to(pixels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``pixels`` (uint8, H×W or H×W×C) resized (bilinear) and converted to ``shape``."""
    from PIL import Image

    arr = np.asarray(pixels)
    mode = "L" if len(shape) == 2 or shape[2] == 1 else "RGB"
    img = Image.fromarray(arr).convert(mode)
    if img.size != (shape[1], shape[0]):
        img = img.resize((shape[1], shape[0]), Image.BILINEAR)
    out = np.asarray(img, dtype=np.float32)
    return out.reshape(shape)


class ReferencePool:
    """Draws ``count`` reference images for an explained image (see the module docstring)."""

    def __init__(self, benchmark: Benchmark, seed: int = 0) -> None:
        self.benchmark = benchmark
        self.seed = seed
        self._groups: dict[str, list[tuple[str, int]]] = {}
        for pair in benchmark.pairs:
            if pair.images is None:
                continue
            self._groups.setdefault(reference_group(pair), []).extend(
                (pair.pair_id, index) for index in (1, 2))
        self._pixels: dict[tuple[str, int], np.ndarray] = {}

    def candidates(self, pair_id: str) -> list[tuple[str, int]]:
        """(pair id, image index) of every image a reference for ``pair_id`` may come from:
        its group first; the whole benchmark when the group holds no other pair."""
        pair = self.benchmark.pair(pair_id)
        same = [c for c in self._groups.get(reference_group(pair), []) if c[0] != pair_id]
        if same:
            return same
        return [c for group in self._groups.values() for c in group if c[0] != pair_id]

    def draw(self, pair_id: str, image_index: int, count: int,
             shape: tuple[int, ...]) -> list[np.ndarray]:
        """``count`` references (float32 arrays of ``shape``) for image ``image_index`` of
        ``pair_id``; with fewer candidates than ``count`` some repeat."""
        pool = sorted(self.candidates(pair_id))
        if not pool:
            raise ConfigError("explain.method.baseline: dataset needs images of at least one "
                              "other pair in the benchmark")
        rng = random.Random(zlib.crc32(f"{self.seed}:{pair_id}:{image_index}".encode()))
        picks = rng.sample(pool, count) if count <= len(pool) else [
            pool[i % len(pool)] for i in range(count)]
        return [fit_to(self._load(key), shape) for key in picks]

    def _load(self, key: tuple[str, int]) -> np.ndarray:
        if key not in self._pixels:
            from robustness.data.image import ImageInput

            images: Sequence[Path] = self.benchmark.pair(key[0]).images  # type: ignore[assignment]
            self._pixels[key] = ImageInput.open(images[key[1] - 1]).pixels
        return self._pixels[key]
