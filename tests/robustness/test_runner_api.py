"""The main job through an API model: the real OpenAI SDK against a loopback server.

Faults are injected: transient rate limits (retried by the adapter), a request that always
fails with a server error (counted as a failure, not cached, asked again on the next run) and
a refusal (invalid, cached). The key never reaches the run folder; cost is estimated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness.cli import main
from tests.helpers.runner_scripted import write_benchmark

from robustness.testing import fake_api as fake_servers
SECRET = "sk-loopback-secret-5551234567"


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"), n_pairs=8)


def api_args(tmp: Path, bench: Path, base_url: str, run: str) -> list[str]:
    return ["model=gpt4o", f"model.base_url={base_url}", "model.max_retries=1",
            "model.timeout_s=10", "mode=mc", "probe=[option_swap]", "dataset=mediconfusion",
            f"dataset.root={bench}", f"cache.dir={tmp / 'cache'}", f"hydra.run.dir={tmp / run}",
            "logger=wandb", "progress=false", "resamples=200"]


def test_api_model_run_counts_failures_costs_and_keeps_the_key_out(tmp_path, bench, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with fake_servers.fake_api_server() as server:
        server.plan.next("rate_limit", times=2, retry_after=0.01)
        server.plan.when("finding 3?", "server_error")  # both images, both conditions
        server.plan.when("finding 5?", "refusal")
        assert main(api_args(tmp_path, bench, server.openai_base_url, "first")) == 0
        first = json.loads((tmp_path / "first" / "summary.json").read_text())
        assert first["failures"].get("server_error") == 4
        assert first["failures"].get("refusal") == 4
        assert first["conditions"]["clean"]["overall"]["invalid_rate"] > 0
        assert first["usage"]["estimated_cost_usd"] > 0
        assert first["cache"]["misses"] == 32

        # the rerun asks again only what failed transiently; refusals are remembered
        assert main(api_args(tmp_path, bench, server.openai_base_url, "second")) == 0
        second = json.loads((tmp_path / "second" / "summary.json").read_text())
        assert second["cache"]["misses"] == 4 and second["cache"]["hits"] == 28
        assert not server.errors
    for run in ("first", "second"):
        for path in (tmp_path / run).rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
