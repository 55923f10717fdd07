"""Keep secrets out of everything the toolkit writes or prints: configs, logs, errors, W&B.

Three layers, one module:

* **text** (:func:`redact_text`): every key this process resolved (:func:`register_secret`),
  every value of a secret-looking environment variable, key-shaped tokens (``sk-…``,
  ``AIza…``, ``Bearer …``), URL user-info (``https://user:TOKEN@host``) and secret-looking
  query parameters (``?key=…``, ``&access_token=…``, ``&X-Amz-Signature=…``), and
  ``name=value`` assignments whose name is a secret (``model.api_key=sk-…``);
* **structures** (:func:`redact`): a config's values under secret keys (``api_key``, ``token``,
  ``password``, …) are masked whole; every other string goes through :func:`redact_text`;
* **logs** (:class:`RedactingFilter`): log records are rewritten before any handler sees them.

Names of variables (``api_key_env: OPENAI_API_KEY``) and counts (``max_new_tokens``) stay.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any, Iterable, Mapping

MASK = REDACTED = "***"
MIN_SECRET_LEN = 8

SECRET_KEY = re.compile(
    r"(^|[_\-.])(api[_\-]?key|apikey|secret|secret[_\-]?key|password|passwd|credentials?|"
    r"private[_\-]?key|authorization)$"
    r"|^(token|(hf|api|access|auth|bearer|refresh|wandb|github|gh|hub|session)[_\-]?token)$",
    re.IGNORECASE,
)
SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
# query parameter names that carry credentials (signed URLs included)
SECRET_QUERY = re.compile(r"key|token|secret|passw|pwd|auth|sig|signature|credential|session",
                          re.IGNORECASE)

_known: set[str] = set()
_known_lock = threading.Lock()

# Shapes of credentials that must never be echoed, even ones we did not resolve ourselves.
_PATTERNS = [
    re.compile(r"\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{12,}"),  # OpenAI, Anthropic
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"\b(?:hf|ghp|gho|github_pat)_[A-Za-z0-9_]{16,}"),  # hub and GitHub tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)((?:api[-_]?key|x-api-key|x-goog-api-key|authorization|access[-_]token)"
               r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{6,}"),
    re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@'\"]+(?=@)"),  # user-info in URLs
]
_QUERY = re.compile(r"([?&;])([^=&#\s'\"]+)=([^&#\s'\"\]\),]*)")
_ASSIGNMENT = re.compile(r"([\w.+~\-]+)=([^,\s\]'\"]+)")


def is_secret_key(key: str) -> bool:
    """Does this config key name a secret?"""
    return bool(SECRET_KEY.search(str(key)))


def register_secret(value: str | None) -> None:
    """Remember ``value`` so :func:`redact_text` blanks it from now on (short values are ignored:
    placeholders like "EMPTY" are not secrets and masking them would garble messages)."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _known_lock:
            _known.add(value)


def secret_values(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables whose names look like secrets (long enough to matter)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if SECRET_ENV.search(k) and len(v) >= MIN_SECRET_LEN}


def _mask_query(match: re.Match) -> str:
    sep, name, value = match.groups()
    return f"{sep}{name}={MASK}" if value and SECRET_QUERY.search(name) else match.group(0)


def _mask_assignment(match: re.Match) -> str:
    name = match.group(1).lstrip("+~").rsplit(".", 1)[-1]
    return f"{match.group(1)}={MASK}" if is_secret_key(name) else match.group(0)


def redact_text(text: object, *, secrets: Iterable[str] | None = None) -> str:
    """``text`` as a string with every known or key-shaped secret masked."""
    out = str(text)
    with _known_lock:
        known = set(_known)
    known |= secret_values() if secrets is None else set(secrets)
    for value in sorted(known, key=len, reverse=True):
        if value in out:
            out = out.replace(value, MASK)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, out)
    if "=" in out:
        out = _QUERY.sub(_mask_query, out)
        out = _ASSIGNMENT.sub(_mask_assignment, out)
    return out


def redact(obj: Any, *, secrets: set[str] | None = None) -> Any:
    """A copy of ``obj`` (dicts, lists, scalars) with secret values replaced."""
    secrets = secret_values() if secrets is None else secrets

    def walk(value: Any, key: str | None) -> Any:
        if key is not None and is_secret_key(key) and value not in (None, ""):
            return REDACTED
        if isinstance(value, Mapping):
            return {k: walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, None) for v in value]
        if isinstance(value, str):
            return redact_text(value, secrets=secrets)
        return value

    return walk(obj, None)


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message with :func:`redact` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
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


def install_handler_redaction(root: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of the root logger (the run's log file and
    console): records from any logger pass through it before they are written."""
    for handler in (root or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
