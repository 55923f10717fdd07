"""Image attribution methods: one class per method with a uniform ``attribute()``, like captum.

``method.attribute(adapter, mode, queries, targets)`` returns one :class:`ImageMap` per query:
the attribution of the answer margin (:mod:`explain.scoring`) of the target option (displayed
label) to every pixel of the query's image, in that image's own coordinates.

* :class:`IntegratedGradients` (white-box models) integrates gradients along the straight path
  from a baseline image to the input through the model's own processor
  (:mod:`explain.whitebox`); interpolation steps run in batches of ``internal_batch_size``.
* :class:`Occlusion` (any model with option scores, API models included) slides a window over
  the image, replaces it with the baseline and records how much the margin drops; all windows
  of an image go to the adapter in batches of ``batch_size`` requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from robustness.data.types import OptionLabel
from robustness.errors import ConfigError
from robustness.models.base import ModelAdapter
from robustness.modes.base import AnsweringMode
from robustness.data.query import Query

from explain.images import BASELINES, baseline_image, check_baseline
from explain.references import ReferencePool
from explain.scoring import AnswerScorer, with_image

DATASET = "dataset"  # IG baseline drawn from other images of the benchmark (expected gradients)
IG_METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left",
              "riemann_right")


@dataclass
class ImageMap:
    """The attribution of one query's answer margin to its image's pixels."""

    pair_id: str
    image_index: int
    attributions: np.ndarray  # same shape as the image's pixels (per channel), float64
    target: OptionLabel  # displayed label whose margin is explained
    score: float  # margin on the image itself
    baseline_score: float | None = None  # margin on the baseline image (IG)
    method: str = ""
    n_steps: int | None = None  # IG: the steps this map took (raised until complete)
    flagged: bool = False  # IG: still incomplete beyond the tolerance at the most steps

    @property
    def map(self) -> np.ndarray:
        """H×W attribution (channels summed)."""
        a = self.attributions
        return a.sum(axis=-1) if a.ndim == 3 else a

    @property
    def completeness_gap(self) -> float | None:
        """IG: sum of attributions minus (score − baseline score); ≈ 0 when steps suffice."""
        if self.baseline_score is None:
            return None
        return float(self.attributions.sum() - (self.score - self.baseline_score))

    @property
    def relative_completeness_gap(self) -> float | None:
        """IG: |completeness gap| as a fraction of |score − baseline score|."""
        gap = self.completeness_gap
        if gap is None or self.baseline_score is None:
            return None
        return abs(gap) / max(abs(self.score - self.baseline_score), 1e-12)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"explain.method.{name}: must be a positive integer, got {value!r}")
    return value


class ImageExplainer(ABC):
    """Base of image attribution methods."""

    name: str = ""
    needs_gradients: bool = False

    def __init__(self) -> None:
        self._scorers: dict[tuple[int, int], Any] = {}
        self._references: ReferencePool | None = None

    def settings(self) -> dict[str, Any]:
        """Method parameters (recorded in the summary)."""
        return {}

    def use_references(self, pool: ReferencePool | None) -> None:
        """Reference images of the benchmark being explained (only baselines drawn from data
        use them)."""
        self._references = pool

    def reference_images(self, query: Query, count: int,
                         shape: tuple[int, ...]) -> list[np.ndarray]:
        """``count`` references for ``query``'s image, sized to ``shape`` (the dataset
        baseline); a config error when no pool was given."""
        if self._references is None:
            raise ConfigError("explain.method.baseline: dataset draws reference images from the "
                              "benchmark; explain through SaliencyRun or call use_references()")
        return self._references.draw(query.pair_id, query.image_index, count, shape)

    @property
    def removal_baseline(self) -> str:
        """What a removed image becomes in the part attribution (an image baseline kind)."""
        kind = getattr(self, "baseline", "black")
        return kind if kind in BASELINES else "black"  # drawn from data: no single image

    def check(self, adapter: ModelAdapter, mode: AnsweringMode) -> None:
        """Fail in one line if this method cannot explain ``mode`` answers of ``adapter``."""
        self._scorer(adapter, mode)

    def _scorer(self, adapter: ModelAdapter, mode: AnsweringMode) -> Any:
        key = (id(adapter), id(mode))
        if key not in self._scorers:
            self._scorers[key] = self._make_scorer(adapter, mode)
        return self._scorers[key]

    def _make_scorer(self, adapter: ModelAdapter, mode: AnsweringMode) -> Any:
        return AnswerScorer(adapter, mode)

    @abstractmethod
    def attribute(self, adapter: ModelAdapter, mode: AnsweringMode, queries: Sequence[Query],
                  targets: Sequence[OptionLabel]) -> list[ImageMap]:
        """One attribution map per query, for the margin of its target (displayed label)."""


class IntegratedGradients(ImageExplainer):
    """Integrated Gradients (Sundararajan et al. 2017) on the original pixels (captum).

    ``baseline``: ``black``, ``blur`` or ``mean`` (:func:`explain.images.baseline_image`), or
    ``dataset`` (expected gradients): the mean of IG from ``n_references`` images of other pairs
    of the benchmark (:mod:`explain.references`; a :class:`SaliencyRun` supplies them).
    ``n_steps`` points of the ``method`` quadrature per baseline; ``internal_batch_size``
    points per forward and backward pass (bounds memory). A map whose completeness gap exceeds
    ``completeness_tolerance`` of its score change is recomputed with twice the steps, up to
    ``max_steps``, and flagged if it still misses."""

    name = "integrated_gradients"
    needs_gradients = True

    def __init__(self, n_steps: int = 32, internal_batch_size: int = 16, baseline: str = "black",
                 method: str = "gausslegendre", n_references: int = 8,
                 completeness_tolerance: float = 0.05, max_steps: int | None = None) -> None:
        super().__init__()
        self.n_steps = _positive_int("n_steps", n_steps)
        self.max_steps = self.n_steps if max_steps is None else _positive_int("max_steps",
                                                                               max_steps)
        if self.max_steps < self.n_steps:
            raise ConfigError(f"explain.method.max_steps: {max_steps} is below n_steps "
                              f"{self.n_steps}")
        if (isinstance(completeness_tolerance, bool)
                or not isinstance(completeness_tolerance, (int, float))
                or completeness_tolerance <= 0):
            raise ConfigError("explain.method.completeness_tolerance: a positive fraction, got "
                              f"{completeness_tolerance!r}")
        self.completeness_tolerance = float(completeness_tolerance)
        self.internal_batch_size = _positive_int("internal_batch_size", internal_batch_size)
        self.baseline = check_baseline(baseline, (*BASELINES, DATASET))
        self.n_references = _positive_int("n_references", n_references)
        if method not in IG_METHODS:
            raise ConfigError(f"explain.method.method: {method!r} is not one of "
                              f"{', '.join(IG_METHODS)}")
        self.method = method

    def settings(self) -> dict[str, Any]:
        out = {"n_steps": self.n_steps, "internal_batch_size": self.internal_batch_size,
               "baseline": self.baseline, "method": self.method,
               "max_steps": self.max_steps, "completeness_tolerance": self.completeness_tolerance}
        if self.baseline == DATASET:
            out["n_references"] = self.n_references
        return out

    def baselines(self, query: Query, pixels: np.ndarray) -> np.ndarray:
        """The baseline images for ``query``: [k, *pixels.shape] float32 (k = 1 unless
        ``dataset``)."""
        if self.baseline != DATASET:
            return baseline_image(pixels, self.baseline).astype(np.float32)[None]
        return np.stack(self.reference_images(query, self.n_references, pixels.shape))

    def _make_scorer(self, adapter: ModelAdapter, mode: AnsweringMode) -> Any:
        from explain.whitebox import WhiteBoxScorer

        return WhiteBoxScorer(adapter, mode)

    def attribute(self, adapter: ModelAdapter, mode: AnsweringMode, queries: Sequence[Query],
                  targets: Sequence[OptionLabel]) -> list[ImageMap]:
        import torch
        from captum.attr import IntegratedGradients as CaptumIG

        scorer = self._scorer(adapter, mode)
        out = []
        for query, target in zip(queries, targets):
            f = scorer.function(query, target)
            pixels = query.image.pixels.astype(np.float32)
            b = torch.as_tensor(self.baselines(query, pixels))
            x = torch.as_tensor(pixels)[None].expand_as(b).contiguous()
            with torch.no_grad():
                ends = f(torch.cat([x[:1], b])).double().cpu().numpy()
            steps = self.n_steps
            while True:
                attr = CaptumIG(f).attribute(x, baselines=b, n_steps=steps, method=self.method,
                                             internal_batch_size=self.internal_batch_size)
                # expected gradients: the mean over baselines (completeness against their mean)
                m = ImageMap(query.pair_id, query.image_index,
                             attr.detach().double().mean(0).cpu().numpy(), target,
                             score=float(ends[0]), baseline_score=float(ends[1:].mean()),
                             method=self.name, n_steps=steps)
                gap = m.relative_completeness_gap
                if gap is None or gap <= self.completeness_tolerance:
                    break
                if steps >= self.max_steps:
                    m.flagged = True
                    break
                steps = min(2 * steps, self.max_steps)
            out.append(m)
        return out


class Occlusion(ImageExplainer):
    """Occlusion (Zeiler & Fergus 2014) over a sliding window (captum), from option scores only.

    ``window`` and ``stride``: pixels (int) or a fraction of the image's shorter side (float in
    (0, 1]); the attribution of a pixel is the mean margin drop over the windows covering it.
    ``baseline``: what a window is filled with: ``black``, ``blur``, ``mean``, or ``dataset``:
    the same place in the mean of ``n_references`` images of other pairs (drawn as IG's dataset
    baseline draws them), so a window shows typical anatomy there rather than a black hole whose
    edges the model reacts to wherever the anatomy is bright. ``batch_size``: occluded images
    per adapter call."""

    name = "occlusion"

    def __init__(self, window: float = 0.125, stride: float = 0.0625, baseline: str = "black",
                 batch_size: int = 64, n_references: int = 8) -> None:
        super().__init__()
        self.window = self._size("window", window)
        self.stride = self._size("stride", stride)
        self.baseline = check_baseline(baseline, (*BASELINES, DATASET))
        self.batch_size = _positive_int("batch_size", batch_size)
        self.n_references = _positive_int("n_references", n_references)

    def fill(self, query: Query, pixels: np.ndarray) -> np.ndarray:
        """What an occluded window shows, an image of ``pixels``' shape (integer grey levels)."""
        if self.baseline != DATASET:
            return np.rint(baseline_image(pixels, self.baseline)).astype(np.float32)
        refs = self.reference_images(query, self.n_references, pixels.shape)
        return np.rint(np.mean(refs, axis=0)).astype(np.float32)

    @staticmethod
    def _size(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
                isinstance(value, float) and value > 1):
            raise ConfigError(f"explain.method.{name}: pixels (a positive integer) or a fraction "
                              f"of the shorter side in (0, 1], got {value!r}")
        return value

    def settings(self) -> dict[str, Any]:
        out = {"window": self.window, "stride": self.stride, "baseline": self.baseline,
               "batch_size": self.batch_size}
        if self.baseline == DATASET:
            out["n_references"] = self.n_references
        return out

    def _pixels(self, value: float, side: int) -> int:
        n = int(value) if isinstance(value, int) else int(round(value * side))
        return max(1, min(n, side))

    def geometry(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """captum's ``sliding_window_shapes`` and ``strides`` for an image of ``shape``."""
        side = min(shape[0], shape[1])
        w, s = self._pixels(self.window, side), self._pixels(self.stride, side)
        if len(shape) == 3:
            return (w, w, shape[2]), (s, s, shape[2])
        return (w, w), (s, s)

    def attribute(self, adapter: ModelAdapter, mode: AnsweringMode, queries: Sequence[Query],
                  targets: Sequence[OptionLabel]) -> list[ImageMap]:
        import torch
        from captum.attr import Occlusion as CaptumOcclusion

        scorer: AnswerScorer = self._scorer(adapter, mode)
        out = []
        for query, target in zip(queries, targets):
            def forward(images: Any, query: Query = query, target: OptionLabel = target) -> Any:
                batch = [with_image(query, img) for img in images.detach().cpu().numpy()]
                return torch.as_tensor(scorer.margins(batch, [target] * len(batch)))

            pixels = query.image.pixels.astype(np.float32)
            x = torch.as_tensor(pixels)[None]
            b = torch.as_tensor(self.fill(query, pixels))[None]
            windows, strides = self.geometry(pixels.shape)
            attr = CaptumOcclusion(forward).attribute(
                x, sliding_window_shapes=windows, strides=strides, baselines=b,
                perturbations_per_eval=self.batch_size)
            score = float(scorer.margins([query], [target])[0])
            out.append(ImageMap(query.pair_id, query.image_index,
                                attr[0].detach().double().cpu().numpy(), target, score=score,
                                method=self.name))
        return out
