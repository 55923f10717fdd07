"""API keys: where they come from, and keeping them out of every string we emit.

Keys are read from environment variables (names set in the model config) or, failing that, a
``.env`` file (python-dotenv; the environment always wins and is never modified). Every key we
resolve is remembered so :func:`redact` can blank it wherever it turns up — error messages,
log records, exception strings — along with anything shaped like a common provider key.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Iterable, Sequence

from robustness.errors import ConfigError

MASK = "***"

_known: set[str] = set()
_known_lock = threading.Lock()

# Shapes of credentials that must never be echoed, even ones we did not resolve ourselves.
_PATTERNS = [
    re.compile(r"\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{12,}"),  # OpenAI, Anthropic
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)((?:api[-_]?key|x-api-key|x-goog-api-key|authorization|access[-_]token)"
               r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{6,}"),
    re.compile(r"(?i)([?&](?:key|api[-_]?key|token)=)[^&\s\"']+"),
    re.compile(r"(//)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
]


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


def register_secret(value: str | None) -> None:
    """Remember ``value`` so :func:`redact` blanks it from now on (short values are ignored:
    placeholders like "EMPTY" are not secrets and masking them would garble messages)."""
    if value and len(value) >= 8:
        with _known_lock:
            _known.add(value)


def redact(text: object) -> str:
    """``text`` as a string with every known key and every key-shaped token masked."""
    out = str(text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in out:
            out = out.replace(value, MASK)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, out)
    return out


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


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message with :func:`redact` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()
SDK_LOGGER_PREFIXES = ("openai", "anthropic", "google_genai", "google.genai", "httpx", "httpx2",
                       "httpcore", "robustness.models.api")


def install_log_redaction(prefixes: Iterable[str] = SDK_LOGGER_PREFIXES) -> None:
    """Attach the redacting filter to the SDK and HTTP loggers (and their existing children:
    a logger's filters only see records created on that logger)."""
    prefixes = tuple(prefixes)
    names = set(prefixes) | {name for name in list(logging.root.manager.loggerDict)
                             if name.startswith(tuple(p + "." for p in prefixes))}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
