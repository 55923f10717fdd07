"""Errors the user can fix. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (file, field, argument): shown as one line on stderr, exit code 2, no traceback."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration that cannot work (e.g. a mode the model cannot serve), caught before any work."""
