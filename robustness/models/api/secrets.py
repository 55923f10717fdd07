"""API keys: where they come from, and keeping them out of every string we emit.

Keys are read from environment variables (names set in the model config) or, failing that, a
``.env`` file (python-dotenv; the environment always wins and is never modified). Every key we
resolve is registered with :mod:`robustness.redaction`, which blanks it wherever it turns up —
error messages, log records, exception strings — along with anything shaped like a key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from robustness.errors import ConfigError
from robustness.redaction import register_secret


class Secret:
    """A credential that prints as ``***`` (repr, str, f-strings, logging)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a cache or a config dump
        raise TypeError("a Secret cannot be pickled")


def _dotenv_values(dotenv: str | Path | None) -> dict[str, str]:
    """Values of the ``.env`` file: the given path, or the nearest one above the working dir."""
    from dotenv import dotenv_values, find_dotenv

    path = str(dotenv) if dotenv else find_dotenv(usecwd=True)
    if not path or not Path(path).is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v}


def resolve_api_key(env_names: str | Sequence[str] | None, *, model: str,
                    dotenv: str | Path | None = None, required: bool = True,
                    placeholder: str = "EMPTY") -> Secret:
    """The key from the first of ``env_names`` set in the environment, else in ``.env``.

    Missing and ``required``: a :class:`ConfigError` naming the variables (never a value).
    Missing and optional (local servers): ``placeholder``.
    """
    names = [env_names] if isinstance(env_names, str) else list(env_names or [])
    if dotenv and not Path(dotenv).is_file():
        raise ConfigError(f"model {model}: dotenv file {dotenv} does not exist")
    file_values: dict[str, str] | None = None
    for name in names:
        value = os.environ.get(name)
        if not value:
            if file_values is None:
                file_values = _dotenv_values(dotenv)
            value = file_values.get(name)
        if value:
            value = value.strip()
            register_secret(value)
            return Secret(value)
    if required:
        where = " or ".join(names) if names else "(no api_key_env configured)"
        raise ConfigError(f"model {model}: no API key found; set {where} in the environment "
                          f"or a .env file")
    return Secret(placeholder)
