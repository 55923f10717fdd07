"""Argument parsing for sub-commands: a bad argument is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from robustness.errors import UserError


class OneLineArgumentParser(argparse.ArgumentParser):
    """``argparse`` that raises :class:`UserError` instead of printing usage, so the CLI prints
    exactly one line (``robustness <cmd>: error: ...``) and exits with code 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")
