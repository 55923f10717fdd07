"""Type and range checks for settings: one line naming the setting, before any work.

A YAML file, a shell quote or an environment interpolation easily turns ``false`` into the
string ``'false'``, which Python reads as true. Settings that gate running someone else's code
or touching the network accept real booleans only.
"""

from __future__ import annotations

import math
import re
from typing import Any

from robustness.errors import ConfigError

COMMIT = re.compile(r"[0-9a-f]{40}")


def strict_bool(name: str, value: Any) -> bool:
    """``value`` if it is a real boolean; anything else (``'false'``, ``0``) is refused."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected true or false, got {value!r} "
                          f"({type(value).__name__}); write it without quotes")
    return value


def optional_bool(name: str, value: Any) -> bool | None:
    """A real boolean or null."""
    return None if value is None else strict_bool(name, value)


def integer(name: str, value: Any, minimum: int | None = None) -> int:
    """An integer (not a bool, not a float with a fraction, not text) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def number(name: str, value: Any, minimum: float | None = None) -> float:
    """A finite number at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return float(value)


def is_commit(revision: Any) -> bool:
    """Whether ``revision`` pins a commit (40 lowercase hex digits), not a branch or tag."""
    return isinstance(revision, str) and COMMIT.fullmatch(revision) is not None
