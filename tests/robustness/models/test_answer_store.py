"""The answer cache's file and its sharing: bad records are misses, compaction keeps every valid
answer, and processes sharing a cache ask each question once."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys

import pytest

from robustness.cli import main
from robustness.models.answer_store import cache_files, verify_file
from robustness.models.cache import CachedAdapter
from robustness.models.leases import HOST, LeaseBoard
from tests.helpers.runner_scripted import ScriptedAdapter, write_benchmark
from tests.robustness.test_runner_cache import gen_requests


def record(key: str, result: object, kind: str = "generate") -> str:
    return json.dumps({"k": key, "kind": kind, "r": result}) + "\n"


def test_a_record_of_the_wrong_shape_is_a_miss_and_a_later_copy_wins(tmp_path):
    cached = CachedAdapter(ScriptedAdapter(), tmp_path)
    first = cached.generate(gen_requests(2))
    lines = cached.path.read_text().splitlines(keepends=True)
    key = json.loads(lines[0])["k"]
    # a valid-JSON line whose result cannot be an answer comes first for that key
    cached.path.write_text(record(key, {"text": "A", "surprise": 1}) + record(key, [1, 2])
                           + "".join(lines) + "not json at all\n")
    again = CachedAdapter(ScriptedAdapter(), tmp_path)
    assert again.skipped_lines == 3 and len(again.store) == 2
    assert [r.text for r in again.generate(gen_requests(2))] == [r.text for r in first]
    assert again.inner.requests == 0  # the valid copy served it: nothing blocked, nothing asked


def test_verify_and_compact_commands(tmp_path, capsys):
    cached = CachedAdapter(ScriptedAdapter(), tmp_path / "answers")
    cached.generate(gen_requests(4))
    good = cached.path.read_text().splitlines(keepends=True)
    cached.path.write_text("".join(good) + good[1] + "garbage\n" + good[2][:30])
    assert main(["cache", "verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "4 answers, 2 unreadable line(s), 1 duplicate(s)" in out
    inode = os.stat(cached.path).st_ino
    assert main(["cache", "compact", str(tmp_path)]) == 0
    assert os.stat(cached.path).st_ino != inode  # replaced atomically, not edited in place
    assert main(["cache", "verify", str(tmp_path)]) == 0
    assert len(cached.path.read_text().splitlines()) == 4
    # a writer that opened the file before the compaction follows it to the new file
    cached.generate(gen_requests(2, offset=4))
    fresh = CachedAdapter(ScriptedAdapter(), tmp_path / "answers")
    assert len(fresh.store) == 6 and fresh.skipped_lines == 0
    assert main(["cache", "verify", str(tmp_path / "missing")]) == 2


def _ask(folder: str, count_file: str, delay: float) -> None:
    cached = CachedAdapter(ScriptedAdapter(delay_s=delay, count_file=count_file), folder)
    for start in range(0, 24, 6):
        cached.generate(gen_requests(6, offset=start))


def test_two_processes_asking_the_same_questions_ask_each_once(tmp_path):
    counts = tmp_path / "asked.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_ask, args=(str(tmp_path), str(counts), 0.02)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    asked = sum(int(line.split()[1]) for line in counts.read_text().splitlines())
    assert asked == 24  # not 48
    (path,) = cache_files(tmp_path)
    report = verify_file(path)
    assert report.records == 24 and report.duplicates == 0 and report.bad_lines == 0
    assert not list(path.with_name(path.name + ".leases").glob("*.json"))  # all released


def test_a_dead_processs_lease_expires(tmp_path):
    cached = CachedAdapter(ScriptedAdapter(), tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    from robustness.models.cache import request_key

    keys = [request_key(cached.inner.identity(), "generate", r) for r in gen_requests(3)]
    board = LeaseBoard(cached.path)
    board.folder.mkdir(parents=True, exist_ok=True)
    (board.folder / "dead.json").write_text(json.dumps(
        {"host": HOST, "pid": int(dead.stdout), "keys": keys}))
    assert board.held_by_others() == frozenset()  # its pid is gone: the claim is void
    cached.generate(gen_requests(3))
    assert cached.inner.requests == 3 and not (board.folder / "dead.json").exists()


def test_a_live_lease_makes_others_wait_for_its_answers(tmp_path):
    """A claim held by a live process (here: a lease without heartbeat on another host that is
    still within its time to live) is waited for, and its answers are read, not asked."""
    writer = CachedAdapter(ScriptedAdapter(), tmp_path)
    reader = CachedAdapter(ScriptedAdapter(), tmp_path)
    from robustness.models.cache import request_key

    keys = [request_key(writer.inner.identity(), "generate", r) for r in gen_requests(2)]
    lease = LeaseBoard(writer.path).folder / "other.json"
    lease.parent.mkdir(parents=True, exist_ok=True)
    lease.write_text(json.dumps({"host": "another-host", "pid": 1, "keys": keys}))
    import threading

    def answer_later() -> None:  # the other process: it asks, stores, then drops its claim
        import time

        time.sleep(0.3)
        requests = gen_requests(2)
        writer._compute("generate", requests, {k: [i] for i, k in enumerate(keys)},
                        writer.inner.generate, [None, None])
        lease.unlink()

    thread = threading.Thread(target=answer_later)
    thread.start()
    reader.generate(gen_requests(2))
    thread.join()
    assert reader.inner.requests == 0 and reader.cache_stats.waited == 2


@pytest.mark.slow
def test_two_runs_started_together_on_one_cache_ask_each_answer_once(tmp_path):
    bench = write_benchmark(tmp_path / "bench", n_pairs=8)
    counts = tmp_path / "asked.txt"
    from tests.helpers.paths import TEST_CONF

    def command(run: str) -> list[str]:
        return [sys.executable, "-m", "robustness", f"hydra.searchpath=[file://{TEST_CONF}]",
                "model=scripted", "mode=scripted_mc", "dataset=mediconfusion",
                f"dataset.root={bench}", f"cache.dir={tmp_path / 'cache'}",
                f"hydra.run.dir={tmp_path / run}", "progress=false", "resamples=50",
                "logger=none", "explain=none", "batch_pairs=2", "model.delay_s=0.01",
                f"+model.count_file={counts}", "probe=[option_swap,gaussian_noise]",
                "probe.gaussian_noise.severities=[1,2]"]

    procs = [subprocess.Popen(command(f"run{i}"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    (path,) = cache_files(tmp_path / "cache")
    report = verify_file(path)
    asked = sum(int(line.split()[1]) for line in counts.read_text().splitlines())
    assert report.duplicates == 0 and report.bad_lines == 0
    assert asked == report.records == 8 * 2 * 4  # 4 conditions, each answer asked once
    for i in range(2):
        summary = json.loads((tmp_path / f"run{i}" / "summary.json").read_text())
        assert summary["cache"]["skipped_lines"] == 0
