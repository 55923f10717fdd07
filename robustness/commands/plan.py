"""``robustness plan [--json] [OVERRIDES ...]``: what a run will ask, before it asks.

Composes the same experiment as ``robustness OVERRIDES`` and prints, without loading the model's
weights or asking it anything, the conditions, the requests per condition and kind, how many are
already in the answer cache, estimated tokens and cost (where the model config has prices) and
the saliency work. The numbers equal what the run then asks. Exit 0; 2 for bad input.
"""

from __future__ import annotations

from robustness.commands.args import hydra_command

USAGE = """usage: robustness plan [--json] [HYDRA_OVERRIDES ...]

Print what `robustness HYDRA_OVERRIDES` would ask the model, without asking: per condition the
requests, how many the answer cache already holds and how many are new; estimated tokens and
cost where the model config has prices; the saliency work. --json prints one JSON object:
{"conditions": [{"name", "requests", "cached", "new", "kinds"}], "total_requests", "cached",
 "new", "estimated_cost_usd", ...}."""


def main(argv: list[str]) -> int:
    parsed = hydra_command(list(argv), "--json", "robustness plan")
    if parsed is None:
        print(USAGE)
        return 0
    as_json, overrides = parsed
    from robustness.shell import run_app

    # the plan writes nothing: no run folder content, no log file, no saved config
    quiet = ["hydra.output_subdir=null", "hydra/job_logging=disabled",
             "hydra/hydra_logging=disabled", "hydra.run.dir=.", "logger=none"]
    return run_app([*overrides, *quiet, f"plan={'json' if as_json else 'true'}"])
