"""The gate's saliency check: grounding of the images both runs explained, paired by image."""

from __future__ import annotations

import json

import numpy as np
import pytest

import robustness
from robustness.cli import main
from robustness.gate.rules import rules_from_mapping
from robustness.stats import sign_flip_mean
from tests.helpers.gate_runs import outcomes, write_benchmark, write_run

METHOD = {"method": "integrated_gradients", "settings": {"n_steps": 16}, "sign": "absolute"}


def _explained(run, ratios, method=METHOD):
    folder = run / "saliency"
    folder.mkdir()
    rows = [{"pair_id": f"g{i:04d}", "image": k, "mask_energy_ratio": r}
            for i, pair in enumerate(ratios) for k, r in zip((1, 2), pair)]
    (folder / "images.json").write_text(json.dumps({**method, "images": rows}))


@pytest.fixture()
def two_runs(tmp_path):
    dataset = write_benchmark(tmp_path / "bench", 24)
    clean = {"clean": {"outcomes": outcomes(24, both=18, one=6)}}
    return (write_run(tmp_path / "base", dataset, clean),
            write_run(tmp_path / "cand", dataset, clean))


def test_lost_grounding_is_reported_and_gates_when_asked(two_runs, capsys):
    base, cand = two_runs
    rng = np.random.default_rng(0)
    real = [(40 + rng.normal(0, 5), None) for _ in range(12)]  # image 2: finding absent
    _explained(base, real)
    _explained(cand, [(r / 4, None) for r, _ in real])
    check = {c.name: c for c in robustness.gate.compare(base, cand).checks}[
        "saliency/mask_energy_ratio"]
    assert check.kind == "saliency" and not check.gating and check.unit == ""
    assert check.delta == pytest.approx(-0.75 * np.mean([r for r, _ in real]))
    assert check.ci[1] < 0 and check.p < 0.001 and check.n_pairs == 12
    assert check.status == "warn"  # reported only by default, flagged as significant
    gated = robustness.gate.compare(base, cand, rules=rules_from_mapping(
        {"saliency": {"mask_energy_ratio": {"margin": 2.0, "gate": True}}}))
    assert gated.verdict == "fail"
    assert main(["gate", str(base), str(cand), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = next(c for c in out["checks"] if c["name"] == "saliency/mask_energy_ratio")
    assert row["status"] == "warn" and " pp" not in row["reason"]


def test_no_check_when_the_runs_explained_differently(two_runs):
    base, cand = two_runs
    _explained(base, [(30.0, None)] * 4)
    _explained(cand, [(30.0, None)] * 4, {**METHOD, "method": "occlusion"})
    result = robustness.gate.compare(base, cand)
    assert not any(c.kind == "saliency" for c in result.checks)
    assert any("different methods" in n for n in result.notes)


def test_equal_grounding_passes(two_runs):
    base, cand = two_runs
    _explained(base, [(30.0, 2.0)] * 6)
    _explained(cand, [(30.0, 2.0)] * 6)
    check = next(c for c in robustness.gate.compare(base, cand).checks if c.kind == "saliency")
    assert check.status == "pass" and check.delta == 0 and check.p == 1.0


def test_a_broken_saliency_record_is_one_line(two_runs, capsys):
    base, cand = two_runs
    (base / "saliency").mkdir()
    (base / "saliency" / "images.json").write_text(  # an image without its index
        '{"images": [{"pair_id": "g0000", "mask_energy_ratio": 3}]}')
    _explained(cand, [(3.0, None)])
    assert main(["gate", str(base), str(cand)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "saliency/images.json" in err[0] and "Traceback" not in err[0]


def test_sign_flip_mean_equals_scipys_permutation_test():
    from scipy.stats import permutation_test

    d = [0.5, -1.25, 2.0, 3.5, 0.75, 1.5, -0.25, 2.25]
    ours = sign_flip_mean(d)
    ref = permutation_test((np.array(d),), np.mean, permutation_type="samples",
                           n_resamples=np.inf, alternative="two-sided").pvalue
    assert ours == pytest.approx(ref)
    assert sign_flip_mean([0.0, 0.0]) == 1.0
    big = np.random.default_rng(1).normal(1.0, 1.0, 40)
    assert sign_flip_mean(big, resamples=2000) < 0.01
