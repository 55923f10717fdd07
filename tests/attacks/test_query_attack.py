"""SimBA: a score-based black-box attack whose every query goes through the answer cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attacks.query_attack import SimBA, dct_pattern
from robustness.cli import main

pytest.importorskip("torch")


def run(tmp, name: str, *extra: str) -> dict:
    assert main(["mode=gd", "dataset.pairs=8", "logger=none", "explain=none", "probe=[simba]",
                 "probe.simba.eps=[8]", "probe.simba.max_queries=40",
                 f"cache.dir={tmp / 'cache'}", f"hydra.run.dir={tmp / name}", "resamples=100",
                 *extra]) == 0
    return json.loads((tmp / name / "summary.json").read_text())


def test_simba_breaks_images_with_cached_counted_queries(tmp_path):
    first = run(tmp_path, "first")
    metrics = first["conditions"]["simba@8"]["probe_metrics"]
    assert metrics["attack_success_rate"] > 0 and 1 < metrics["queries_mean"] <= 40
    assert metrics["linf_mean"] <= 8
    # every query was a real request through the cache: the search's queries are its misses
    asked = first["conditions"]["simba@8"]["cache"]["misses"]
    assert asked >= metrics["queries_mean"] * metrics["attacked_images"] - 16
    again = run(tmp_path, "again")
    assert again["cache"]["misses"] == 0  # the same search, answered from the cache
    first_recs = (tmp_path / "first" / "predictions" / "simba@8.jsonl").read_text()
    again_recs = (tmp_path / "again" / "predictions" / "simba@8.jsonl").read_text()
    digests = [json.loads(x)["query"]["image_sha256"] for x in first_recs.splitlines()]
    assert digests == [json.loads(x)["query"]["image_sha256"] for x in again_recs.splitlines()]


def test_simba_runs_on_a_loopback_api_model_with_log_probabilities(tmp_path, monkeypatch):
    from robustness.testing.fake_api import fake_api_server

    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-0123456789")
    with fake_api_server() as server:
        summary = run(tmp_path, "api", "model=gpt4o", f"model.base_url={server.openai_base_url}",
                      "dataset.pairs=2", "probe.simba.max_queries=6")
    metrics = summary["conditions"]["simba@8"]["probe_metrics"]
    assert metrics["queries_mean"] <= 6 and summary["usage"]["model"]["input_tokens"] > 0


def test_dct_patterns_and_settings():
    p = dct_pattern((8, 8), 0, 0)
    assert np.allclose(p, 1.0)
    q = dct_pattern((8, 8, 3), 1, 2)
    assert q.shape == (8, 8, 3) and np.abs(q).max() == pytest.approx(1.0)
    with pytest.raises(Exception, match="max_queries"):
        SimBA(max_queries=0)
