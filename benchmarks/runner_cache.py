"""Time the default experiment cold and warm: the answer cache's speed-up, and the budget.

Runs ``robustness`` (with the given overrides, default: none — the offline default
experiment) twice in fresh subprocesses sharing a new, empty cache folder: the first run
generates the phantom set and asks the model everything; the second is served from the cache.
Checks both runs give identical predictions, that the first run met its budget (default 180 s,
the issue's 3-minute target for the default run on 2 CPU cores) and prints as its last line
``speedup: X`` (first run's wall time / second run's).

    python benchmarks/runner_cache.py [--budget 180] [HYDRA_OVERRIDES ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(overrides: list[str], cache: Path, run_dir: Path) -> float:
    cmd = [sys.executable, "-m", "robustness", *overrides, f"cache.dir={cache}",
           f"hydra.run.dir={run_dir}", "progress=false"]
    env = {**os.environ, "WANDB_SILENT": "true"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"run failed with exit code {done.returncode}")
    return elapsed


def predictions(run_dir: Path) -> dict[str, list[str]]:
    """Choice-bearing content of every predictions file (latency fields dropped)."""
    import json

    out = {}
    for path in sorted((run_dir / "predictions").glob("*.jsonl")):
        out[path.name] = [json.dumps({k: v for k, v in json.loads(line).items()
                                      if k != "latency_s"}, sort_keys=True)
                          for line in path.read_text().splitlines()]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=180.0, help="seconds for the cold run")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="robustness-bench-") as tmp:
        tmp_path = Path(tmp)
        cold = run(overrides, tmp_path / "cache", tmp_path / "cold")
        warm = run(overrides, tmp_path / "cache", tmp_path / "warm")
        same = predictions(tmp_path / "cold") == predictions(tmp_path / "warm")
    print(f"cold run (empty cache, phantom generated): {cold:.1f} s")
    print(f"warm run (answers from the cache):        {warm:.1f} s")
    print(f"identical predictions: {same}")
    if not same:
        raise SystemExit("the cached run's predictions differ from the cold run's")
    over = cold > args.budget
    print(f"budget {args.budget:.0f} s: {'EXCEEDED' if over else 'met'}")
    print(f"speedup: {cold / warm:.1f}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
