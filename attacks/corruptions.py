"""Image corruptions through albumentations, at severities 1–5 (ImageNet-C style tables).

Each corruption declares ``SEVERITIES`` — the transform's parameters at each level — and
builds one albumentations transform from a row. A run picks a list of levels; every level is
its own condition, named ``<probe>@<level>`` (``gaussian_noise@3``).

Randomness: albumentations 2.x ignores global seeds, so every image gets its own
``A.Compose(..., seed=derive_seed(probe name, level, pair id, image, base seed))``; the same
perturbed pixels come out in every run, for every model, whatever the order of work.
Parameters are fixed per level (degenerate ranges), so only the noise pattern, blur angle or
warp field is random. Pixels stay uint8 with the input's shape (grayscale H×W or RGB).
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from attacks.base import Condition, Probe, ProbeContext, derive_seed, source_image
from robustness.data.types import Pair
from robustness.errors import ConfigError
from robustness.data.derived import DerivedDigests, derivation_key
from robustness.data.image import DeferredImage, ImageInput
from robustness.data.query import Query

TARGETS = ("both", "image1", "image2")
LEVELS = (1, 2, 3, 4, 5)


def _albumentations():
    """Import albumentations lazily (≈3 s) and without its online version check."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple[str, ...]:
    """Versions of what draws the corruptions (a new one may draw different pixels)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("albumentations", "albucore", "numpy", "opencv-python-headless",
                 "opencv-python"):
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pass
    return tuple(out)


def _cv2():
    import cv2

    return cv2


def check_target(target: str, probe: str) -> str:
    if target not in TARGETS:
        raise ConfigError(f"probe {probe}: target must be one of {', '.join(TARGETS)}, "
                          f"got {target!r}")
    return target


def targeted(query: Query, target: str) -> bool:
    """Whether ``target`` (both / image1 / image2) covers the slot of ``query``."""
    return target == "both" or target == f"image{query.image_index}"


class ImageCorruption(Probe):
    """Base of albumentations corruptions: a severity table and one transform per level."""

    SEVERITIES: ClassVar[Mapping[int, Mapping[str, Any]]] = {}

    def __init__(self, severities: Sequence[int] | int = LEVELS, target: str = "both",
                 name: str | None = None) -> None:
        self._set_name(name)
        levels = [severities] if isinstance(severities, int) else list(severities)
        if not levels:
            raise ConfigError(f"probe {self.name}: severities is empty")
        for level in levels:
            valid = isinstance(level, int) and not isinstance(level, bool)
            if not valid or level not in self.SEVERITIES:
                raise ConfigError(f"probe {self.name}: severity {level!r} is not one of "
                                  f"{sorted(self.SEVERITIES)}")
        if len(set(levels)) != len(levels):
            raise ConfigError(f"probe {self.name}: severities repeat a level: {levels}")
        self.severities = tuple(levels)
        self.target = check_target(target, self.name)

    def build(self, **params: Any):
        """The albumentations transform (``p=1``) for one row of ``SEVERITIES``."""
        raise NotImplementedError

    def conditions(self) -> list[Condition]:
        return [Condition(name=f"{self.name}@{level}", probe=self.name,
                          params={"severity": level, "target": self.target,
                                  **dict(self.SEVERITIES[level])})
                for level in self.severities]

    def pipeline(self, level: int) -> Any:
        """The ``A.Compose`` of one level, built once per probe and level (reseeded per image)."""
        pipelines = self.__dict__.setdefault("_pipelines", {})
        if level not in pipelines:
            pipelines[level] = _albumentations().Compose(
                [self.build(**self.SEVERITIES[level])], seed=0)
        return pipelines[level]

    def corrupt(self, pixels: np.ndarray, level: int, seed: int) -> np.ndarray:
        """Corrupt ``pixels`` at ``level`` with an explicit seed (pure: same seed, same output;
        reseeding one pipeline draws exactly what ``Compose(seed=seed)`` would)."""
        transform = self.pipeline(level)
        transform.set_random_seed(seed)
        out = transform(image=np.ascontiguousarray(pixels))["image"]
        if out.shape != pixels.shape and out.ndim == pixels.ndim + 1 and out.shape[-1] == 1:
            out = out[..., 0]
        if out.shape != pixels.shape:
            raise RuntimeError(f"{self.name}: transform changed shape {pixels.shape} -> "
                               f"{out.shape}")
        if out.dtype != np.uint8:
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out

    def image_seed(self, level: int, pair_id: str, image: int, base_seed: int) -> int:
        """The per-image seed: (probe name, level, pair id, original image index, base seed)."""
        return derive_seed(self.name, level, pair_id, image, base_seed)

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        level = int(condition.params["severity"])
        out = []
        for q in queries:
            if targeted(q, self.target):
                seed = self.image_seed(level, pair.pair_id, source_image(q), ctx.seed)
                q = replace(q, image=self._corrupted(q.image, level, seed, ctx.derived))
            out.append(q)
        return tuple(out)

    def _corrupted(self, image: ImageInput, level: int, seed: int,
                   derived: DerivedDigests | None) -> ImageInput:
        """The corrupted image; deferred when an earlier run recorded its digest."""
        if derived is None:
            return ImageInput(self.corrupt(image.pixels, level, seed))
        key = derivation_key(type(self).__qualname__, dict(self.SEVERITIES[level]), seed,
                             image.digest, _library_versions())
        known = derived.get(key)
        if known is not None:
            return DeferredImage(lambda: self.corrupt(image.pixels, level, seed), known,
                                 str(derived.path))
        made = ImageInput(self.corrupt(image.pixels, level, seed))
        derived.put(key, made.digest)
        return made


# ------------------------------------------------------------------------- noise


class GaussianNoise(ImageCorruption):
    """Additive Gaussian noise (electronic detector noise); std as a fraction of 255."""

    name = "gaussian_noise"
    SEVERITIES = {1: {"std": 0.03}, 2: {"std": 0.06}, 3: {"std": 0.10}, 4: {"std": 0.15},
                  5: {"std": 0.22}}

    def build(self, std: float):
        # one noise field for all channels: a grey radiograph stays grey
        return _albumentations().GaussNoise(std_range=(std, std), per_channel=False, p=1.0)


class ShotNoise(ImageCorruption):
    """Poisson (quantum) noise, as in a low-dose acquisition; larger scale = fewer photons."""

    name = "shot_noise"
    SEVERITIES = {1: {"scale": 0.005}, 2: {"scale": 0.01}, 3: {"scale": 0.02},
                  4: {"scale": 0.04}, 5: {"scale": 0.08}}

    def build(self, scale: float):
        return _albumentations().ShotNoise(scale_range=(scale, scale), p=1.0)


class SaltPepperNoise(ImageCorruption):
    """Impulse noise (dead/hot detector pixels, transmission errors); amount = pixel share."""

    name = "salt_pepper"
    SEVERITIES = {1: {"amount": 0.005}, 2: {"amount": 0.01}, 3: {"amount": 0.02},
                  4: {"amount": 0.04}, 5: {"amount": 0.08}}

    def build(self, amount: float):
        return _albumentations().SaltAndPepper(amount=(amount, amount),
                                               salt_vs_pepper=(0.5, 0.5), p=1.0)


# ------------------------------------------------------------------------- blur


class GaussianBlur(ImageCorruption):
    """Gaussian blur (focal-spot / detector unsharpness); sigma in pixels, kernel from sigma."""

    name = "gaussian_blur"
    SEVERITIES = {1: {"sigma": 0.6}, 2: {"sigma": 1.0}, 3: {"sigma": 1.6}, 4: {"sigma": 2.4},
                  5: {"sigma": 3.5}}

    def build(self, sigma: float):
        return _albumentations().GaussianBlur(blur_limit=0, sigma_limit=(sigma, sigma), p=1.0)


class MotionBlur(ImageCorruption):
    """Linear motion blur (patient motion during exposure); kernel length in pixels, random
    direction per image."""

    name = "motion_blur"
    SEVERITIES = {1: {"kernel": 5}, 2: {"kernel": 7}, 3: {"kernel": 11}, 4: {"kernel": 15},
                  5: {"kernel": 21}}

    def build(self, kernel: int):
        return _albumentations().MotionBlur(blur_limit=(kernel, kernel), allow_shifted=False,
                                            p=1.0)


# ----------------------------------------------------------------- compression / resolution


class JpegCompression(ImageCorruption):
    """Lossy JPEG re-encoding (PACS exports, figures in articles); quality 1–100."""

    name = "jpeg_compression"
    SEVERITIES = {1: {"quality": 50}, 2: {"quality": 30}, 3: {"quality": 20},
                  4: {"quality": 12}, 5: {"quality": 7}}

    def build(self, quality: int):
        return _albumentations().ImageCompression(compression_type="jpeg",
                                                  quality_range=(quality, quality), p=1.0)


class Downscale(ImageCorruption):
    """Lower resolution: downscale by ``scale`` (area), then upscale back (bilinear)."""

    name = "downscale"
    SEVERITIES = {1: {"scale": 0.8}, 2: {"scale": 0.6}, 3: {"scale": 0.45}, 4: {"scale": 0.3},
                  5: {"scale": 0.2}}

    def build(self, scale: float):
        cv2 = _cv2()
        return _albumentations().Downscale(
            scale_range=(scale, scale),
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}, p=1.0)


# ------------------------------------------------------------------------- intensity


class Contrast(ImageCorruption):
    """Contrast reduced about the mean: x' = c·x + (1−c)·mean (a flat, washed-out film)."""

    name = "contrast"
    SEVERITIES = {1: {"factor": 0.75}, 2: {"factor": 0.6}, 3: {"factor": 0.45},
                  4: {"factor": 0.3}, 5: {"factor": 0.2}}

    def build(self, factor: float):
        # albumentations: x' = (1 + contrast)·x + brightness·mean(x) with brightness_by_max=False
        return _albumentations().RandomBrightnessContrast(
            brightness_limit=(1 - factor, 1 - factor), contrast_limit=(factor - 1, factor - 1),
            brightness_by_max=False, p=1.0)


class WindowShift(ImageCorruption):
    """A radiology display window set wrong: a narrower window (``width`` × full range) whose
    centre moves up by ``center_shift`` × 255; intensities outside the window clip to black
    or white, as when a CT is read at the wrong level/width."""

    name = "window_shift"
    SEVERITIES = {1: {"width": 0.9, "center_shift": 0.02},
                  2: {"width": 0.8, "center_shift": 0.04},
                  3: {"width": 0.7, "center_shift": 0.06},
                  4: {"width": 0.6, "center_shift": 0.08},
                  5: {"width": 0.5, "center_shift": 0.10}}

    def build(self, width: float, center_shift: float):
        # window [c − w/2, c + w/2] (fractions of 255) → [0, 255]: x' = (x − low·255) / w
        low = 0.5 + center_shift - width / 2
        alpha, beta = 1.0 / width, -low / width  # beta as a fraction of 255 (brightness_by_max)
        return _albumentations().RandomBrightnessContrast(
            brightness_limit=(beta, beta), contrast_limit=(alpha - 1, alpha - 1),
            brightness_by_max=True, p=1.0)


class Gamma(ImageCorruption):
    """Gamma change of the display curve (x' = 255·(x/255)^γ, γ > 1 darkens mid-tones)."""

    name = "gamma"
    SEVERITIES = {1: {"gamma": 1.15}, 2: {"gamma": 1.35}, 3: {"gamma": 1.6}, 4: {"gamma": 1.95},
                  5: {"gamma": 2.4}}

    def build(self, gamma: float):
        g = gamma * 100  # albumentations takes γ in percent
        return _albumentations().RandomGamma(gamma_limit=(g, g), p=1.0)


# ------------------------------------------------------------------------- geometry


class ElasticDistortion(ImageCorruption):
    """Smooth elastic warp (soft-tissue deformation, positioning); ``alpha`` scales the random
    displacement field, ``sigma`` (pixels) smooths it; borders reflect."""

    name = "elastic"
    SEVERITIES = {1: {"alpha": 20.0, "sigma": 12.0}, 2: {"alpha": 40.0, "sigma": 12.0},
                  3: {"alpha": 60.0, "sigma": 12.0}, 4: {"alpha": 90.0, "sigma": 12.0},
                  5: {"alpha": 130.0, "sigma": 12.0}}

    def build(self, alpha: float, sigma: float):
        cv2 = _cv2()
        return _albumentations().ElasticTransform(alpha=alpha, sigma=sigma,
                                                  border_mode=cv2.BORDER_REFLECT_101, p=1.0)


# ------------------------------------------------------------------- chosen by name


class Corruption(Probe):
    """Any corruption of ``conf/probe/`` chosen by name (``kind``), at one or more severities.

    For searches over corruption kinds (``hparams_search=worst_case_corruption``): the kind is
    a parameter, so a sweeper can choose it. The named config must build an
    :class:`ImageCorruption`; conditions keep that corruption's names (``gaussian_noise@3``).
    """

    name = "corruption"

    def __init__(self, kind: str = "gaussian_noise", severities: Sequence[int] | int = 3,
                 target: str = "both", name: str | None = None) -> None:
        self._set_name(name)
        self.kind = str(kind)
        self.inner = corruption_named(self.kind, severities, target)
        self.severities, self.target = self.inner.severities, self.inner.target

    def conditions(self) -> list[Condition]:
        """The named corruption's conditions (``gaussian_noise@3``), owned by this probe."""
        return [replace(c, probe=self.name, params={"kind": self.kind, **c.params})
                for c in self.inner.conditions()]

    def apply(self, condition: Condition, pair: Pair, queries: tuple[Query, Query],
              ctx: ProbeContext) -> Sequence[Query]:
        return self.inner.apply(condition, pair, queries, ctx)  # same pixels as that probe


def corruption_named(kind: str, severities: Sequence[int] | int, target: str) -> ImageCorruption:
    """The corruption ``conf/probe/KIND.yaml`` builds (the config folder is the registry)."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from robustness.configs import config_dir

    folder = config_dir() / "probe"
    path = folder / f"{kind}.yaml"
    kinds = sorted(p.stem for p in folder.glob("*.yaml")
                   if _is_corruption(OmegaConf.load(p).get("_target_")))
    if "/" in kind or not path.is_file() or kind not in kinds:
        raise ConfigError(f"probe corruption: kind {kind!r} is not an image corruption "
                          f"(known: {', '.join(kinds)})")
    cls = get_class(OmegaConf.load(path)["_target_"])
    return cls(severities=severities, target=target, name=kind)


def _is_corruption(target: Any) -> bool:
    from hydra.utils import get_class

    if not isinstance(target, str) or not target.startswith("attacks.corruptions."):
        return False
    cls = get_class(target)
    return isinstance(cls, type) and issubclass(cls, ImageCorruption)
