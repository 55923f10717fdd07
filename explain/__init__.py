"""Saliency: captum attributions of a model's answer to its image and prompt.

* :mod:`explain.base` — :class:`Explainer`, the interface the ``explain`` group builds, and
  :class:`ExplainContext`, what the runner hands it;
* :mod:`explain.methods` — image attribution methods with a uniform ``attribute()``:
  :class:`IntegratedGradients` (white-box) and :class:`Occlusion` (option scores only);
* :mod:`explain.parts` — :class:`PartShapley`, the share of the image, question and options;
* :mod:`explain.grounding` — mask energy ratio, pointing game, rank correlation;
* :mod:`explain.whitebox` — the differentiable path through a Hugging Face model's processor,
  also the gradient oracle of the adversarial attacks (:class:`AdapterGradientOracle`);
* :mod:`explain.run` — :class:`SaliencyRun`, what the ``explain`` config group builds.

Names are imported lazily so ``import explain`` stays free of torch and captum.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Explainer": "explain.base",
    "ExplainContext": "explain.base",
    "IntegratedGradients": "explain.methods",
    "Occlusion": "explain.methods",
    "ImageExplainer": "explain.methods",
    "ImageMap": "explain.methods",
    "PartShapley": "explain.parts",
    "AnswerScorer": "explain.scoring",
    "WhiteBoxScorer": "explain.whitebox",
    "AdapterGradientOracle": "explain.whitebox",
    "SaliencyRun": "explain.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'explain' has no attribute {name!r}")
    return getattr(import_module(module), name)
