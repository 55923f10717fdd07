"""The ``robustness`` command: sub-command words dispatch to small modules, anything else is Hydra.

Sub-command modules are imported lazily so ``robustness score --help`` never imports torch.
Each module exposes ``main(argv: list[str]) -> int``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence

from robustness.errors import UserError

SUBCOMMANDS: dict[str, str] = {
    "score": "robustness.commands.score",
    "data": "robustness.commands.data",
    "train-reference": "robustness.commands.train_reference",
    "gate": "robustness.commands.gate",
    "cache": "robustness.commands.cache",
    "plan": "robustness.commands.plan",
    "report": "robustness.commands.report",
    "dashboard": "robustness.commands.dashboard",
}

USAGE = """usage: robustness [HYDRA_OVERRIDES ...]          run an experiment (Hydra; -m for sweeps)
       robustness score PREDICTIONS --annotations DATASET_JSON [--threshold 3] [--json]
       robustness data {download,phantom,preview} ...
       robustness train-reference [HYDRA_OVERRIDES ...]
       robustness gate BASELINE CANDIDATE [...]
       robustness plan [--json] [HYDRA_OVERRIDES ...]   what a run will ask, before it asks
       robustness cache {verify,compact} [DIR]
       robustness report PATH... [--baseline PATH] --out FILE.html   compare runs
       robustness dashboard --entity E --project P [--name N] [--dry-run]   W&B workspace
Each sub-command has --help."""


def run_guarded(func: Callable[[list[str]], int], argv: list[str], prog: str) -> int:
    """Run a sub-command, turning user errors into one line on stderr (secrets masked) and exit
    code 2."""
    try:
        return int(func(argv) or 0)
    except UserError as err:
        from robustness.redaction import redact_text

        print(redact_text(f"{prog}: error: {err}"), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[args[0]])
        return run_guarded(module.main, args[1:], f"robustness {args[0]}")
    if args and args[0] in ("-h", "--help") and len(args) == 1:
        print(USAGE)
        print("\nHydra help for experiments: robustness --hydra-help / robustness --cfg job")
        return 0
    from robustness.shell import run_app  # Hydra and torch only when an experiment runs

    return run_guarded(lambda a: run_app(a), args, "robustness")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
