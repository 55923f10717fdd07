"""``robustness plan``: what a run will ask, counted before it asks, equal to what it then asks."""

from __future__ import annotations

import json

from robustness.cli import main

ARGS = ["dataset.pairs=8", "dataset.size=96", "probe=[option_swap,gaussian_noise]",
        "probe.gaussian_noise.severities=[2]", "explain=none"]


def plan(capsys, *args: str) -> dict:
    assert main(["plan", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_plan_equals_what_the_run_asks(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = f"cache.dir={tmp_path / 'cache'}"
    before = plan(capsys, *ARGS, cache)
    assert [c["name"] for c in before["conditions"]] == ["clean", "option_swap",
                                                        "gaussian_noise@2"]
    assert before["total_requests"] == 48 and before["cached"] == 0
    assert before["conditions"][0]["kinds"] == {"generate": 16}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # the plan wrote no run
    assert main([*ARGS, cache, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["cache"]["misses"] == before["new"]
    after = plan(capsys, *ARGS, cache)
    assert after["new"] == 0 and after["cached"] == after["total_requests"] == 48
    more = plan(capsys, *ARGS, cache, "probe.gaussian_noise.severities=[2,4]")
    assert more["new"] == 16 and more["conditions"][-1]["new"] == 16


def test_the_plan_prices_an_api_run_without_asking(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # nothing is sent, so no key is needed
    got = plan(capsys, "model=gpt4o", "dataset.pairs=4", "dataset.size=96", "probe=[]",
               "explain=default", f"cache.dir={tmp_path}")
    assert got["total_requests"] == 8 and got["estimated_tokens"]["input"] > 0
    assert got["estimated_cost_usd"] > 0
    assert "skipped" in got["saliency"]  # an API model gives no gradients for IG


def test_the_plan_shows_the_saliency_work_and_a_table(tmp_path, capsys):
    assert main(["plan", "dataset.pairs=8", "dataset.size=96", "probe=[]",
                 "explain=integrated_gradients", "explain.pairs=2",
                 f"cache.dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "clean" in out and "total" in out and "saliency: method integrated_gradients" in out
    assert main(["plan", "--bogus"]) == 2
