"""Checks that a saliency map depends on the model: model randomisation and a model-free map.

* :func:`randomised` re-draws the weights of named parts of a white-box model in place and
  restores them on exit (Adebayo et al. 2018, "Sanity checks for saliency maps"): each tensor
  from a normal with the tensor's own mean and standard deviation, so scales survive and the
  learned structure does not. Stages are cumulative (decoder, then projector, then vision tower).
* :func:`model_free_map` is a map no model made: the image's absolute difference from the mean
  of its reference images. Grounding that a method reaches is only evidence of the *model*
  looking at the finding by how far it exceeds this map's (``mask_energy_gain``).
* :func:`pointing_summary` reports the pointing game with its count and a Wilson interval, and
  no rate at all on fewer than :data:`MIN_POINTING_IMAGES` images (4 images of a random model
  point right 75% of the time).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from robustness.errors import ConfigError

MIN_POINTING_IMAGES = 10
MODEL_FREE_REFERENCES = 8  # reference images averaged for the model-free map


def _parts(model: Any, names: Sequence[str]) -> list[Any]:
    """The outermost modules of ``model`` whose last dotted name component is in ``names``."""
    found: list[tuple[str, Any]] = []
    for dotted, module in model.named_modules():
        if dotted.split(".")[-1] in names and not any(
                dotted.startswith(prefix + ".") for prefix, _ in found):
            found.append((dotted, module))
    return [module for _, module in found]


@contextmanager
def randomised(model: Any, names: Sequence[str], seed: int = 0) -> Iterator[int]:
    """Within the block the parameters of the modules called ``names`` are random; yields how
    many tensors were re-drawn. A name matching no module is a one-line error."""
    import torch

    modules = _parts(model, names)
    if not modules:
        raise ConfigError(f"explain.sanity_cascade: no module named {', '.join(names)} in "
                          f"{type(model).__name__}")
    params: dict[int, Any] = {}
    for module in modules:
        for p in module.parameters():
            params.setdefault(id(p), p)
    saved = [(p, p.detach().clone()) for p in params.values()]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    try:
        with torch.no_grad():
            for p, original in saved:
                values = original.float()
                std = float(values.std()) if values.numel() > 1 else 0.0
                noise = torch.randn(values.shape, generator=generator) * std + float(values.mean())
                p.copy_(noise.to(device=p.device, dtype=p.dtype))
        yield len(saved)
    finally:
        with torch.no_grad():
            for p, original in saved:
                p.copy_(original)


def model_free_map(pixels: np.ndarray, references: Sequence[np.ndarray]) -> np.ndarray:
    """|image − mean of ``references``| summed over channels (an H×W map)."""
    image = np.asarray(pixels, dtype=np.float64)
    mean = np.mean([np.asarray(r, dtype=np.float64) for r in references], axis=0)
    diff = np.abs(image - mean.reshape(image.shape))
    return diff.sum(axis=-1) if diff.ndim == 3 else diff


def wilson_interval(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion, in percent."""
    if n == 0:
        return (0.0, 100.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(100 * max(0.0, centre - half), 2), round(100 * min(1.0, centre + half), 2))


def pointing_summary(hits: Sequence[bool | None]) -> dict[str, Any]:
    """``pointing_game`` (percent), ``pointing_game_n`` and ``pointing_game_ci`` (95% Wilson);
    the rate and interval are null on fewer than :data:`MIN_POINTING_IMAGES` images."""
    kept = [bool(h) for h in hits if h is not None]
    n = len(kept)
    if n < MIN_POINTING_IMAGES:
        return {"pointing_game": None, "pointing_game_n": n, "pointing_game_ci": None}
    return {"pointing_game": round(100.0 * sum(kept) / n, 2), "pointing_game_n": n,
            "pointing_game_ci": list(wilson_interval(sum(kept), n))}


def cascade_stages(cascade: Mapping[str, Sequence[str]]) -> list[tuple[str, tuple[str, ...]]]:
    """The configured stages in order: (stage name, module names), validated."""
    if not isinstance(cascade, Mapping) or not cascade:
        raise ConfigError("explain.sanity_cascade: a mapping of stage name to module names, "
                          "e.g. {decoder: [language_model, lm_head], vision_tower: [vision_tower]}")
    stages = []
    for stage, names in cascade.items():
        if isinstance(names, str) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"explain.sanity_cascade.{stage}: a list of module names")
        stages.append((str(stage), tuple(names)))
    return stages
