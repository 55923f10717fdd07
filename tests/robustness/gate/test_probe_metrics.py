"""The gate compares probe metrics image by image: a position-biased release fails on order
consistency, which set accuracy (one A and one B answer per pair) cannot see."""

from __future__ import annotations

import json

import pytest

import robustness
from robustness.cli import main
from robustness.gate.rules import rules_from_mapping


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bias")
    common = ["probe=[option_swap]", "dataset.pairs=48", "logger=none", "explain=none",
              f"cache.dir={tmp / 'cache'}", "resamples=200"]
    for model in ("reference", "reference_biased"):
        assert main([f"model={model}", *common, f"hydra.run.dir={tmp / model}"]) == 0
    return tmp / "reference", tmp / "reference_biased"


def test_a_position_biased_release_fails_on_order_consistency(runs, capsys):
    base, cand = runs
    verdict = robustness.gate.compare(base, cand)
    checks = {c.name: c for c in verdict.checks}
    order = checks["option_swap/order_consistency"]
    assert order.status == "fail" and order.gating and order.kind == "probe"
    assert order.baseline > 80 and order.candidate < 70 and order.p_adjusted < 0.05
    summary = json.loads((base / "summary.json").read_text())
    assert order.baseline == pytest.approx(
        summary["conditions"]["option_swap"]["probe_metrics"]["order_consistency"], abs=0.01)
    bias = checks["option_swap/position_bias"]
    assert bias.candidate > bias.baseline and bias.ci[0] > 0
    assert checks["option_swap/flip_rate"].delta > 0
    assert main(["gate", str(base), str(cand), "--json"]) == 1
    names = {c["name"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert {"option_swap/order_consistency", "option_swap/position_bias",
            "option_swap/flip_rate"} <= names


def test_identical_runs_pass_the_probe_metrics(runs):
    base, _ = runs
    verdict = robustness.gate.compare(base, base, rules="strict")
    probe_checks = [c for c in verdict.checks if c.kind == "probe"]
    assert len(probe_checks) == 3 and all(c.status == "pass" for c in probe_checks)
    assert all(c.delta == 0 for c in probe_checks)


def test_probe_metric_rules_are_configurable():
    rules = rules_from_mapping({"probe_metrics": {"flip_rate": {"margin": 5, "gate": True}}})
    assert rules.probe_metrics["flip_rate"].gate and rules.probe_metrics["flip_rate"].margin == 5
    assert rules.probe_metrics["order_consistency"].gate  # the defaults gate order consistency
    with pytest.raises(Exception, match="probe_metrics"):
        rules_from_mapping({"probe_metrics": {"nonsense": {"margin": 1}}})


def test_answers_that_do_not_follow_swapped_images_are_caught(tmp_path):
    """swap_images shows image 2 in slot 1: a model answering from the pixels gives slot 1 the
    clean answer of image 2. The candidate keeps half its pairs' answers in place instead."""
    from robustness.data.mediconfusion import load_benchmark
    from tests.helpers.gate_runs import outcomes, swapped_gold, write_benchmark, write_run

    dataset = write_benchmark(tmp_path / "bench", 40)
    gold = swapped_gold(load_benchmark(dataset))
    probe = {"name": "swap_images", "params": {"slots": [2, 1]}}
    clean = {"outcomes": outcomes(40, both=40)}
    base = write_run(tmp_path / "base", dataset, {
        "clean": clean, "swap_images": {"outcomes": outcomes(40, both=40), "probe": probe,
                                        "gold": gold}})
    cand = write_run(tmp_path / "cand", dataset, {
        "clean": clean, "swap_images": {"outcomes": outcomes(40, both=20, one=20),
                                        "probe": probe, "gold": gold}})
    checks = {c.name: c for c in robustness.gate.compare(base, cand).checks}
    follows = checks["swap_images/answer_follows_image"]
    assert follows.baseline == 100.0 and follows.candidate == 75.0
    assert follows.kind == "probe" and follows.p < 0.05 and follows.status == "warn"
    assert "option_swap/order_consistency" not in checks
    strict = {c.name: c for c in robustness.gate.compare(base, cand, rules="strict").checks}
    assert strict["swap_images/answer_follows_image"].status == "fail"
