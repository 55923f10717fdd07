"""MediConfusion robustness toolkit: stress-test medical VLMs on confusing image pairs.

The Python API (imported on first use, so ``import robustness`` stays light):
:func:`evaluate` runs an experiment and returns a :class:`RunResult`; :func:`score` scores a
predictions file; :func:`robustness.gate.compare` compares two runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {"evaluate": "robustness.api", "score": "robustness.api",
            "RunResult": "robustness.api", "compose": "robustness.api"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "gate":  # robustness.gate.compare without importing the gate first
        return import_module("robustness.gate")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robustness' has no attribute {name!r}")
    return getattr(import_module(module), name)
