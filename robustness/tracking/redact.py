"""Keep secrets out of configs sent to W&B and written to run folders.

A value is replaced by ``"***"`` when its key names a secret (``api_key``, ``token``,
``password``, ...) or when it equals the value of a secret-looking environment variable.
Names of variables (``api_key_env: OPENAI_API_KEY``) and counts (``max_new_tokens``) stay.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

REDACTED = "***"
SECRET_KEY = re.compile(
    r"(^|[_\-.])(api[_\-]?key|apikey|secret|secret[_\-]?key|password|passwd|credentials?|"
    r"private[_\-]?key|authorization)$"
    r"|^(token|(hf|api|access|auth|bearer|refresh|wandb|github|gh|hub|session)[_\-]?token)$",
    re.IGNORECASE,
)
SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
MIN_SECRET_LEN = 8


def is_secret_key(key: str) -> bool:
    """Does this config key name a secret?"""
    return bool(SECRET_KEY.search(str(key)))


def secret_values(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables whose names look like secrets (long enough to matter)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if SECRET_ENV.search(k) and len(v) >= MIN_SECRET_LEN}


ASSIGNMENT = re.compile(r"([\w.+~\-]+)=([^,\s]+)")


def _redact_assignments(text: str) -> str:
    """``model.api_key=sk-...`` inside a string (override lists, joined override names)."""

    def sub(match: re.Match) -> str:
        name = match.group(1).lstrip("+~").rsplit(".", 1)[-1]
        return f"{match.group(1)}={REDACTED}" if is_secret_key(name) else match.group(0)

    return ASSIGNMENT.sub(sub, text) if "=" in text else text


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
            value = _redact_assignments(value)
            for secret in secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
        return value

    return walk(obj, None)
