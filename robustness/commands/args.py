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


def hydra_command(argv: list[str], flag: str, prog: str) -> tuple[bool, list[str]] | None:
    """For commands whose arguments are Hydra overrides plus one ``flag``: None for ``--help``
    (print the usage), else (flag given, the overrides). Any other option is one line."""
    if any(a in ("-h", "--help") for a in argv):
        return None
    overrides = [a for a in argv if a != flag]
    bad = [a for a in overrides if a.startswith("-")]
    if bad:
        raise UserError(f"unknown option {bad[0]!r} (arguments are Hydra overrides, "
                        f"see {prog} --help)")
    return flag in argv, overrides


def add_column_option(parser: argparse.ArgumentParser, help: str) -> None:
    """The repeatable ``--column FIELD=NAME`` option (read with :func:`column_overrides`)."""
    parser.add_argument("--column", action="append", default=[], metavar="FIELD=NAME", help=help)


def column_overrides(items: list[str]) -> dict[str, str]:
    """``--column FIELD=NAME`` options as the ``dataset.columns`` mapping."""
    columns = {}
    for item in items:
        field, sep, name = item.partition("=")
        if not sep or not field or not name:
            raise UserError(f"--column {item!r}: expected FIELD=NAME")
        columns[field] = name
    return columns
