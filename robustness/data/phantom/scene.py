"""The pieces every modality shares: anatomy, overlays, the drawn density map, findings and marks.

A modality samples an :class:`Anatomy` (all random numbers, including texture and noise fields,
are drawn here), then draws it deterministically. A finding edits a copy of the anatomy (adds an
overlay, enlarges the heart, removes a vessel subtree), so the two images of a pair come from the
same anatomy and the same noise and differ only where the edit reaches; :class:`Mark` shapes name
that region for the ground-truth mask.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np

from robustness.data.phantom.canvas import Grid, Shape, Stamp
from robustness.data.phantom.settings import Difficulty

# Overlays are painted at one of three moments of a modality's drawing.
TISSUE, BONE, DEVICE = 0, 1, 2

Mode = Literal["add", "paint", "max", "min"]


@dataclass(frozen=True)
class Overlay:
    """A shape painted into the density map: ``add`` a density, ``paint`` towards a value, or take
    the ``max``/``min``; ``clip`` names a region (e.g. ``lung_left``) whose coverage bounds it."""

    shape: Shape
    mode: Mode
    value: float
    stage: int = TISSUE
    clip: str | None = None

    def stamp(self, grid: Grid, regions: dict[str, np.ndarray]) -> Stamp | None:
        stamp = self.shape.stamp(grid)
        if stamp is None or self.clip is None:
            return stamp
        return Stamp(stamp.rows, stamp.cols, stamp.alpha * regions[self.clip][stamp.rows, stamp.cols])

    def apply(self, density: np.ndarray, grid: Grid, regions: dict[str, np.ndarray]) -> None:
        stamp = self.stamp(grid, regions)
        if stamp is None:
            return
        if self.mode == "add":
            stamp.add(density, self.value)
        elif self.mode == "paint":
            stamp.paint(density, self.value)
        elif self.mode == "max":
            region = density[stamp.rows, stamp.cols]
            np.maximum(region, region + stamp.alpha * (self.value - region).clip(0), out=region)
        else:
            region = density[stamp.rows, stamp.cols]
            region += stamp.alpha * np.minimum(self.value - region, 0)


@dataclass(frozen=True, kw_only=True)
class Anatomy:
    """One patient and one acquisition; subclasses add the modality's structures."""

    variant: str
    fov_mm: float  # field of view, to state finding sizes in millimetres
    noise: np.ndarray = field(repr=False, compare=False)  # shared unit-variance noise field
    noise_sigma: float = 0.0
    overlays: tuple[Overlay, ...] = ()

    def with_overlays(self, *extra: Overlay) -> "Anatomy":
        return replace(self, overlays=self.overlays + extra)


@dataclass
class Drawn:
    """A drawn density map plus named coverage maps of anatomical regions (for clipping and marks)."""

    density: np.ndarray
    regions: dict[str, np.ndarray]


def paint_stage(anatomy: Anatomy, stage: int, drawn: Drawn, grid: Grid) -> None:
    """Apply the anatomy's overlays that belong to ``stage``, in order."""
    for overlay in anatomy.overlays:
        if overlay.stage == stage:
            overlay.apply(drawn.density, grid, drawn.regions)


def window(values: np.ndarray, level: float, width: float) -> np.ndarray:
    """CT display window: ``level ± width/2`` maps to [0, 1]."""
    return np.clip((values - (level - width / 2.0)) / width, 0.0, 1.0)


def to_uint8(display: np.ndarray) -> np.ndarray:
    """[0, 1] display values to 8-bit grey levels."""
    return np.round(np.clip(display, 0.0, 1.0) * 255.0).astype(np.uint8)


class Modality(ABC):
    """A modality flavour: samples anatomy, draws density, renders grey levels."""

    name: ClassVar[str]
    label: ClassVar[str]  # words used in questions and captions, e.g. "chest radiograph"
    variants: ClassVar[tuple[str, ...]]

    @abstractmethod
    def sample(self, rng: np.random.Generator, grid: Grid, difficulty: Difficulty,
               variant: str) -> Anatomy:
        """Draw every random number of one patient and acquisition (textures and noise included)."""

    @abstractmethod
    def draw(self, anatomy: Anatomy, grid: Grid) -> Drawn:
        """Deterministic density map of ``anatomy`` (overlays included)."""

    @abstractmethod
    def render(self, anatomy: Anatomy, drawn: Drawn) -> np.ndarray:
        """Grey levels (uint8) from the density map, with the anatomy's acquisition noise."""

    def image(self, anatomy: Anatomy, grid: Grid) -> tuple[np.ndarray, Drawn]:
        drawn = self.draw(anatomy, grid)
        return self.render(anatomy, drawn), drawn


@dataclass(frozen=True)
class Mark:
    """Part of the ground-truth region: a shape, optionally limited to a named anatomical region."""

    shape: Shape
    clip: str | None = None

    def support(self, grid: Grid, regions: dict[str, np.ndarray]) -> np.ndarray:
        mask = np.zeros((grid.size, grid.size), bool)
        stamp = self.shape.stamp(grid)
        if stamp is None:
            return mask
        alpha = stamp.alpha
        if self.clip is not None:
            alpha = alpha * regions[self.clip][stamp.rows, stamp.cols]
        mask[stamp.rows, stamp.cols] = alpha > 0
        return mask


@dataclass(frozen=True)
class ImageFinding:
    """One image's version of the decisive finding."""

    anatomy: Anatomy
    answer: str  # option key: present/absent, left/right, upper/lower, normal/abnormal, ...
    finding: str  # finding type, e.g. "pulmonary_nodule" (named even when absent)
    present: bool
    marks: tuple[Mark, ...]
    location: dict[str, Any] = field(default_factory=dict)  # side, zone, level, structure
    size_mm: float | None = None
    slots: dict[str, str] = field(default_factory=dict)  # words for this image's caption


@dataclass(frozen=True)
class PairFinding:
    """The two images' findings plus what the question needs to be worded."""

    family: str
    images: tuple[ImageFinding, ImageFinding]
    question: str  # key of the question template set
    categories: tuple[str, ...]
    slots: dict[str, str] = field(default_factory=dict)  # words shared by question and options


def presence(family: str, anatomy: Anatomy, overlays: tuple[Overlay, ...], marks: tuple[Mark, ...],
             finding: str, question: str, categories: tuple[str, ...], *,
             location: dict[str, Any], size_mm: float | None, slots: dict[str, str],
             answers: tuple[str, str] = ("present", "absent")) -> PairFinding:
    """A present/absent pair: the same anatomy with and without ``overlays``; both images are marked
    where the finding is (or would be)."""
    present = ImageFinding(anatomy.with_overlays(*overlays), answers[0], finding, True, marks,
                           dict(location), size_mm, dict(slots))
    absent = ImageFinding(anatomy, answers[1], finding, False, marks, dict(location), None, dict(slots))
    return PairFinding(family, (present, absent), question, categories, dict(slots))


def size_mm(diameter: float, anatomy: Anatomy) -> float:
    """A normalised diameter (image width = 2) in millimetres, rounded to 1 mm."""
    return float(round(diameter / 2.0 * anatomy.fov_mm))


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def choice(rng: np.random.Generator, options):
    """One element of a sequence, drawn with ``rng`` (keeps the value's own type)."""
    return options[int(rng.integers(len(options)))]
