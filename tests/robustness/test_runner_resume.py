"""Interrupted work loses nothing: the real runner in a subprocess, killed midway, resumed.

A run killed with SIGKILL after some answers are on disk, then started again with the same
command, must end with exactly the predictions of an uninterrupted run and must ask the model
only what was not yet stored. Ctrl-C (SIGINT) must leave the cache whole and the W&B run
finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.runner_scripted import write_benchmark
from tests.robustness.test_runner import cli_args
from tests.helpers.wandb_records import run_facts

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")

PROBES = ("probe=[option_swap,gaussian_noise,swap_images]", "probe.gaussian_noise.severities=[3]")
N_PAIRS = 24
TOTAL_ANSWERS = 4 * 2 * N_PAIRS  # 4 conditions, 2 images per pair
# swap_images asks exactly what clean asked (same image, same question): served by the cache
UNIQUE_REQUESTS = 3 * 2 * N_PAIRS


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"), n_pairs=N_PAIRS)


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "robustness", *args]


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}


def cache_lines(cache_dir: Path) -> list[str]:
    files = list((cache_dir / "answers").glob("*.jsonl"))
    return files[0].read_text().splitlines() if files else []


def valid_records(cache_dir: Path) -> int:
    count = 0
    for line in cache_lines(cache_dir):
        try:
            json.loads(line)
            count += 1
        except ValueError:
            pass
    return count


def _default_sigint() -> None:
    """A user's terminal delivers Ctrl-C to a process that handles it. CI shells often start
    jobs with SIGINT ignored, which a child inherits and Python then never turns into
    KeyboardInterrupt; give the run the disposition a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_and_interrupt(args: list[str], cache_dir: Path, sig: int, after: int) -> subprocess.Popen:
    proc = subprocess.Popen(command(args), cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while len(cache_lines(cache_dir)) < after:
        assert proc.poll() is None, f"run ended before it could be interrupted: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.005)
    proc.send_signal(sig)
    proc.wait(60)
    return proc


def asked(counts: Path) -> int:
    if not counts.exists():
        return 0
    return sum(int(line.split()[1]) for line in counts.read_text().splitlines())


def test_killed_run_resumes_to_exactly_the_uninterrupted_answers(tmp_path, bench):
    common = (*PROBES, "logger=none", "batch_pairs=2", "model.delay_s=0.004")
    reference = tmp_path / "reference"
    done = subprocess.run(command(cli_args(reference, bench, *common)), cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    work = tmp_path / "work"
    counts = tmp_path / "asked.txt"
    killed = start_and_interrupt(cli_args(work, bench, *common, f"model.count_file={counts}",
                                          run="killed"),
                                 work / "cache", signal.SIGKILL, after=UNIQUE_REQUESTS // 2)
    assert killed.returncode == -signal.SIGKILL
    assert not (work / "killed" / "summary.json").exists()
    stored = valid_records(work / "cache")
    assert UNIQUE_REQUESTS // 2 <= stored < UNIQUE_REQUESTS
    asked_before = asked(counts)

    resumed = subprocess.run(command(cli_args(work, bench, *common, f"model.count_file={counts}",
                                              run="resumed")),
                             cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    # only what was not on disk was asked again; nothing lost, nothing asked twice after resume
    assert asked(counts) - asked_before == UNIQUE_REQUESTS - stored
    assert valid_records(work / "cache") == UNIQUE_REQUESTS

    names = sorted(p.name for p in (reference / "run" / "predictions").iterdir())
    assert names == sorted(p.name for p in (work / "resumed" / "predictions").iterdir())
    assert len(names) == 4
    for name in names:
        expected = (reference / "run" / "predictions" / name).read_bytes()
        got = (work / "resumed" / "predictions" / name).read_bytes()
        assert got == expected, name
    ref_summary = json.loads((reference / "run" / "summary.json").read_text())
    got_summary = json.loads((work / "resumed" / "summary.json").read_text())
    for name, cond in ref_summary["conditions"].items():
        assert got_summary["conditions"][name]["overall"] == cond["overall"]
        assert got_summary["conditions"][name].get("shift") == cond.get("shift")

    # and a third identical run is served entirely from the cache
    again = subprocess.run(command(cli_args(work, bench, *common, f"model.count_file={counts}",
                                            run="again")),
                           cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert asked(counts) - asked_before == UNIQUE_REQUESTS - stored


def test_ctrl_c_keeps_the_cache_whole_and_finishes_wandb(tmp_path, bench):
    common = (*PROBES, "logger=wandb", "batch_pairs=2", "model.delay_s=0.02")  # run outlasts the signal
    proc = start_and_interrupt(cli_args(tmp_path, bench, *common, run="interrupted"),
                               tmp_path / "cache", signal.SIGINT, after=UNIQUE_REQUESTS // 3)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "robustness: interrupted" in stderr and "Traceback" not in stderr
    lines = cache_lines(tmp_path / "cache")
    assert all(json.loads(line)["k"] for line in lines)  # whole records only
    facts = run_facts(tmp_path / "interrupted")
    assert facts["exit_code"] == 130  # the W&B run was finished, marked as interrupted
    rerun = subprocess.run(command(cli_args(tmp_path, bench, *common, run="rerun")), cwd=ROOT,
                           env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((tmp_path / "rerun" / "summary.json").read_text())
    assert summary["cache"]["hits"] >= len(lines)
    assert summary["cache"]["hits"] + summary["cache"]["misses"] == TOTAL_ANSWERS


def test_a_ctrl_c_python_drops_inside_a_finaliser_still_stops_the_run(tmp_path, bench, capsys,
                                                                      monkeypatch):
    """Python discards a KeyboardInterrupt raised while a finaliser runs ("Exception ignored
    in ..."); the run still stops at the next batch: exit 130, W&B run marked interrupted, the
    finished batches in the cache. Without the runner's own record of the signal it would have
    run to the end (exit 0), as the Ctrl-C test above sometimes saw."""
    from robustness.cli import main

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not at Python's default handler in this process")
    dropped: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    code = main(cli_args(tmp_path, bench, *PROBES, "logger=wandb", "batch_pairs=2",
                         "model.sigint_in_finaliser_at=3", run="dropped"))
    assert dropped == [KeyboardInterrupt]  # Python did drop it
    assert code == 130 and "robustness: interrupted" in capsys.readouterr().err
    assert run_facts(tmp_path / "dropped")["exit_code"] == 130
    assert 0 < len(cache_lines(tmp_path / "cache")) < UNIQUE_REQUESTS
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
