"""The reference model: a small LLaVA trained on phantom pairs, shipped as the offline default.

``checkpoint_path(name)`` finds a shipped checkpoint inside the installed package, so model
configs can point at it wherever the package lives.
"""

from __future__ import annotations

from pathlib import Path

from robustness.errors import ConfigError

CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = ("reference", "reference_biased")


def checkpoint_path(name: str = "reference") -> str:
    """Absolute path of the shipped checkpoint ``name`` (``reference`` or ``reference_biased``)."""
    path = CHECKPOINTS_DIR / name
    if not (path / "config.json").is_file():
        known = ", ".join(SHIPPED)
        raise ConfigError(f"no shipped reference checkpoint {name!r} at {path} (shipped: {known})")
    return str(path)
