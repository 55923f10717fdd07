"""`robustness gate` on constructed runs of known truth: verdicts, exit codes and mismatches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT
from robustness.cli import main as cli_main
from robustness.data.mediconfusion import load_benchmark
from robustness.metrics import score_pairs
from robustness.stats import mcnemar_exact
from tests.helpers.gate_runs import (BOTH, ONE, choices_for, outcomes, swapped_gold,
                             write_benchmark, write_official, write_run)

SWAP = {"name": "option_swap", "params": {}}
NOISE = {"name": "gaussian_noise", "params": {"severity": 3, "target": "both"}}


def gate(capsys, *args: str) -> tuple[int, str, str]:
    code = cli_main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def gate_json(capsys, *args: str) -> tuple[int, dict]:
    code, out, err = gate(capsys, *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def bench176(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench176"), 176)


def clean_run(path: Path, dataset: Path, n: int, both: int, **kw) -> Path:
    return write_run(path, dataset, {"clean": {"outcomes": outcomes(n, both=both, one=n - both)}},
                     **kw)


# ---------------------------------------------------------------- verdicts of known truth

def test_real_regression_fails_with_exit_1(tmp_path, bench176, capsys):
    # 20 of 176 pairs go from both-right to confused, none the other way: -11.36 pp, p = 2 / 2^20
    base = clean_run(tmp_path / "base", bench176, 176, 120, model="v1")
    cand = clean_run(tmp_path / "cand", bench176, 176, 100, model="v2")
    code, report = gate_json(capsys, base, cand)
    assert code == 1 and report["verdict"] == "fail"
    acc = by_name(report)["clean/set_accuracy"]
    assert acc["status"] == "fail"
    assert acc["baseline"] == pytest.approx(100 * 120 / 176, abs=0.01)
    assert acc["candidate"] == pytest.approx(100 * 100 / 176, abs=0.01)
    assert acc["delta"] == pytest.approx(-100 * 20 / 176, abs=0.01)
    assert acc["p"] == pytest.approx(2 / 2**20)
    lo, hi = acc["ci"]
    assert lo < acc["delta"] < hi < 0
    assert by_name(report)["clean/confusion"]["status"] == "fail"  # confused pairs rose too
    code, out, _ = gate(capsys, base, cand)
    assert code == 1 and "verdict: FAIL" in out and "clean/set_accuracy" in out


def test_same_size_noise_on_fewer_pairs_passes_with_warning(tmp_path, capsys):
    # 44 pairs: 7 lost, 2 gained -> -11.36 pp, the same size, but p = 2·P(Bin(9,½) ≤ 2) ≈ 0.18
    dataset = write_benchmark(tmp_path / "bench44", 44)
    base_codes = outcomes(44, both=30, one=14)
    cand_codes = [ONE] * 7 + [BOTH] * 23 + [BOTH] * 2 + [ONE] * 12
    base = write_run(tmp_path / "base", dataset, {"clean": {"outcomes": base_codes}})
    cand = write_run(tmp_path / "cand", dataset, {"clean": {"outcomes": cand_codes}})
    code, report = gate_json(capsys, base, cand)
    acc = by_name(report)["clean/set_accuracy"]
    assert acc["delta"] == pytest.approx(-100 * 5 / 44, abs=0.01)
    assert acc["p"] == pytest.approx(2 * (1 + 9 + 36) / 512)
    assert code == 0 and report["verdict"] == "pass"
    assert acc["status"] == "warn" and "not significant" in acc["reason"]


def test_improvement_passes_clean(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 100)
    cand = clean_run(tmp_path / "cand", bench176, 176, 130)
    code, report = gate_json(capsys, base, cand)
    assert code == 0 and report["verdict"] == "pass"
    assert all(c["status"] == "pass" for c in report["checks"])
    assert by_name(report)["clean/set_accuracy"]["delta"] > 15


def test_identical_runs_pass_with_p_one(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 90)
    cand = clean_run(tmp_path / "cand", bench176, 176, 90)
    code, report = gate_json(capsys, base, cand)
    assert code == 0
    acc = by_name(report)["clean/set_accuracy"]
    assert acc["delta"] == 0 and acc["p"] == 1.0 and acc["ci"] == [0.0, 0.0]


def test_probe_shift_regression_fails_while_clean_is_equal(tmp_path, bench176, capsys):
    # same clean answers; under option_swap the baseline loses 5 pairs, the candidate 30
    clean = {"outcomes": outcomes(176, both=120, one=56)}
    base = write_run(tmp_path / "base", bench176, {
        "clean": clean,
        "option_swap": {"outcomes": outcomes(176, both=115, one=61), "probe": SWAP}})
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": clean, "option_swap": {"outcomes": outcomes(176, both=90, one=86), "probe": SWAP}})
    code, report = gate_json(capsys, base, cand)
    checks = by_name(report)
    assert checks["clean/set_accuracy"]["status"] == "pass"
    shift = checks["option_swap/set_accuracy_shift"]
    assert shift["baseline"] == pytest.approx(-100 * 5 / 176, abs=0.01)
    assert shift["candidate"] == pytest.approx(-100 * 30 / 176, abs=0.01)
    assert shift["delta"] == pytest.approx(-100 * 25 / 176, abs=0.01)
    assert shift["ci"][1] < 0
    assert shift["status"] == "fail" and code == 1
    # per-pair differences in differences are 25 × -1: the exact sign-flip p is 2 / 2^25
    assert shift["p"] == pytest.approx(2 / 2**25)


def test_shift_with_probe_that_changes_the_truth(tmp_path, bench176, capsys):
    """Image-swap probes flip the gold per pair; the records' ``correct`` carries it."""
    gold = swapped_gold(load_benchmark(bench176))
    clean = {"outcomes": outcomes(176, both=100, one=76)}
    probe = {"name": "image_swap", "params": {}}
    base = write_run(tmp_path / "base", bench176, {
        "clean": clean, "image_swap": {"outcomes": outcomes(176, both=100, one=76), "probe": probe,
                                       "gold": gold}})
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": clean, "image_swap": {"outcomes": outcomes(176, both=100, one=76), "probe": probe,
                                       "gold": gold}})
    code, report = gate_json(capsys, base, cand)
    shift = by_name(report)["image_swap/set_accuracy_shift"]
    assert code == 0 and shift["baseline"] == 0.0 and shift["delta"] == 0.0


def test_holm_correction_decides_between_warn_and_fail(tmp_path, bench176, capsys):
    # 15 lost, 5 gained: raw McNemar p ≈ 0.041 for set accuracy and confusion alike;
    # Holm over the two gating checks doubles the smallest -> 0.083: warning, not failure
    base_codes = outcomes(176, both=100, one=76)
    cand_codes = [ONE] * 15 + [BOTH] * 85 + [BOTH] * 5 + [ONE] * 71
    base = write_run(tmp_path / "base", bench176, {"clean": {"outcomes": base_codes}})
    cand = write_run(tmp_path / "cand", bench176, {"clean": {"outcomes": cand_codes}})
    raw = mcnemar_exact([True] * 15 + [False] * 5, [False] * 15 + [True] * 5)
    assert 0.025 < raw < 0.05
    code, report = gate_json(capsys, base, cand)
    acc = by_name(report)["clean/set_accuracy"]
    assert acc["p"] == pytest.approx(raw) and acc["p_adjusted"] == pytest.approx(2 * raw)
    assert acc["status"] == "warn" and code == 0
    none = tmp_path / "none.yaml"
    none.write_text("correction: none\n")
    code, report = gate_json(capsys, base, cand, "--config", none)
    assert by_name(report)["clean/set_accuracy"]["status"] == "fail" and code == 1
    bonf = tmp_path / "bonf.yaml"
    bonf.write_text("correction: bonferroni\nclean:\n  confusion: null\n")  # one check: p = raw
    code, report = gate_json(capsys, base, cand, "--config", bonf)
    assert [c["name"] for c in report["checks"] if c["category"] is None] == ["clean/set_accuracy"]
    assert code == 1


def test_margin_and_gating_are_settable(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 120)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100)  # -11.36 pp, significant
    wide = tmp_path / "wide.yaml"
    wide.write_text("clean:\n  set_accuracy: {margin: 15}\n"
                    "  confusion: {gate: false, margin: 15}\n")
    code, report = gate_json(capsys, base, cand, "--config", wide)
    assert code == 0 and by_name(report)["clean/set_accuracy"]["status"] == "pass"
    off = tmp_path / "off.yaml"
    off.write_text("clean:\n  set_accuracy: {gate: false}\n  confusion: {gate: false}\n")
    code, report = gate_json(capsys, base, cand, "--config", off)
    acc = by_name(report)["clean/set_accuracy"]
    assert code == 0 and acc["status"] == "warn" and acc["gating"] is False
    assert acc["p_adjusted"] is None


def test_per_category_values_match_official_scoring_and_can_gate(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 120)
    cand = clean_run(tmp_path / "cand", bench176, 176, 60)
    code, report = gate_json(capsys, base, cand)
    bench = load_benchmark(bench176)
    official = score_pairs(bench, choices_for(bench, outcomes(176, both=60, one=116)))
    cats = [c for c in report["checks"] if c["category"]]
    assert {c["category"] for c in cats} == set(bench.categories)
    for check in cats:
        assert check["candidate"] == pytest.approx(
            official.per_category[check["category"]].set_accuracy, abs=0.01)
        assert check["gating"] is False
    assert all(c["status"] != "fail" for c in cats)  # reported only by default
    strict = tmp_path / "cats.yaml"
    strict.write_text("per_category:\n  metrics:\n    set_accuracy: {margin: 5, gate: true}\n"
                      "    confusion: {margin: 5, gate: true}\n")
    code, report = gate_json(capsys, base, cand, "--config", strict)
    assert any(c["status"] == "fail" and c["category"] for c in report["checks"])
    assert len([c for c in report["checks"] if c["category"]]) == 2 * len(bench.categories)


def test_strict_preset_loads_and_gates_more(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 120)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100)
    code, report = gate_json(capsys, base, cand, "--config", "strict")
    assert code == 1
    assert by_name(report)["clean/individual_accuracy"]["gating"] is True
    assert report["rules"]["alpha"] == 0.1


def test_invalid_answers_and_confusion_on_valid_pairs(tmp_path, bench176, capsys):
    base = write_run(tmp_path / "base", bench176,
                     {"clean": {"outcomes": outcomes(176, both=100, one=40, none=36)}})
    cand = write_run(tmp_path / "cand", bench176,
                     {"clean": {"outcomes": outcomes(176, both=100, invalid=40, none=36)}})
    code, report = gate_json(capsys, base, cand)
    conf = by_name(report)["clean/confusion"]
    assert conf["baseline"] == pytest.approx(100 * 40 / 176, abs=0.01)
    assert conf["candidate"] == 0.0  # the 40 invalid pairs leave the confusion denominator
    assert conf["n_pairs"] == 176 and code == 0


# ---------------------------------------------------------------- official results files

def test_official_results_files_with_annotations(tmp_path, bench176, capsys):
    bench = load_benchmark(bench176)
    base = write_official(tmp_path / "base.json", bench, outcomes(176, both=120, one=56))
    cand = write_official(tmp_path / "cand.json", bench, outcomes(176, both=90, one=56, invalid=30))
    code, report = gate_json(capsys, base, cand, "--annotations", bench176)
    acc = by_name(report)["clean/set_accuracy"]
    assert acc["baseline"] == pytest.approx(100 * 120 / 176, abs=0.01)
    assert acc["candidate"] == pytest.approx(100 * 90 / 176, abs=0.01)
    assert code == 1 and report["verdict"] == "fail"
    assert report["benchmark"]["content_hash"] == bench.content_hash
    code, report = gate_json(capsys, base, base, "--annotations", bench176)
    assert code == 0


def test_official_results_need_annotations(tmp_path, bench176, capsys):
    bench = load_benchmark(bench176)
    base = write_official(tmp_path / "base.json", bench, outcomes(176, both=120, one=56))
    code, out, err = gate(capsys, base, base)
    assert code == 2 and "--annotations" in err and str(base) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_official_file_against_run_dir_compares_clean(tmp_path, bench176, capsys):
    bench = load_benchmark(bench176)
    base = write_official(tmp_path / "base.json", bench, outcomes(176, both=120, one=56))
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": {"outcomes": outcomes(176, both=120, one=56)},
        "option_swap": {"outcomes": outcomes(176, both=110, one=66), "probe": SWAP}})
    code, report = gate_json(capsys, base, cand, "--annotations", bench176)
    assert code == 0 and report["conditions"] == ["clean"]
    assert any("clean only" in n for n in report["notes"])
    other = write_benchmark(tmp_path / "other", 176, prefix="g")
    other.write_text(other.read_text().replace("Is there a lesion?", "Is there a mass?"))
    code, out, err = gate(capsys, base, cand, "--annotations", other)
    assert code == 2 and "content hash" in err


def test_jsonl_predictions_file_against_run_dir(tmp_path, bench176, capsys):
    """A `robustness score`-style JSON Lines file is one clean condition (gold: --annotations)."""
    base = clean_run(tmp_path / "base", bench176, 176, 120)
    bench = load_benchmark(bench176)
    choices = choices_for(bench, outcomes(176, both=100, one=76))
    cand = tmp_path / "cand.jsonl"
    cand.write_text("".join(json.dumps({"pair_id": pid, "image": img, "choice": c}) + "\n"
                            for (pid, img), c in choices.items()))
    code, out, err = gate(capsys, base, cand)  # no gold in the file, found via the run's path
    assert code == 1
    code, report = gate_json(capsys, base, cand, "--annotations", bench176)
    assert code == 1 and by_name(report)["clean/set_accuracy"]["candidate"] == pytest.approx(
        100 * 100 / 176, abs=0.01)


def test_per_category_shift_checks_are_reported_only_by_default(tmp_path, bench176, capsys):
    clean = {"outcomes": outcomes(176, both=120, one=56)}
    base = write_run(tmp_path / "base", bench176, {
        "clean": clean,
        "option_swap": {"outcomes": outcomes(176, both=115, one=61), "probe": SWAP}})
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": clean,
        "option_swap": {"outcomes": outcomes(176, both=60, one=116), "probe": SWAP}})
    cfg = tmp_path / "cats.yaml"
    cfg.write_text("per_category:\n  conditions: all\n  metrics:\n    set_accuracy_shift: {}\n")
    code, report = gate_json(capsys, base, cand, "--config", cfg)
    shifts = [c for c in report["checks"] if c["category"] and c["kind"] == "shift"]
    assert len(shifts) == len(load_benchmark(bench176).categories)
    assert all(c["gating"] is False and c["condition"] == "option_swap" for c in shifts)
    assert all(c["delta"] < -5 and c["status"] == "warn" for c in shifts)  # significant, info only
    assert code == 1  # from the overall option_swap shift


@pytest.mark.real_data
def test_official_files_on_the_real_benchmark_match_official_scoring(tmp_path, real_annotations,
                                                                      capsys):
    bench = load_benchmark(real_annotations)
    n = len(bench)
    base_codes = outcomes(n, both=n // 2, one=n - n // 2)
    cand_codes = outcomes(n, both=n // 2 - 30, one=n - n // 2 + 10, none=20)
    base = write_official(tmp_path / "base.json", bench, base_codes)
    cand = write_official(tmp_path / "cand.json", bench, cand_codes)
    code, report = gate_json(capsys, base, cand, "--annotations", real_annotations)
    official = score_pairs(bench, choices_for(bench, cand_codes))
    checks = by_name(report)
    assert checks["clean/set_accuracy"]["candidate"] == pytest.approx(
        official.overall.set_accuracy, abs=0.01)
    for cat, metrics in official.per_category.items():
        assert checks[f"clean/set_accuracy/{cat}"]["candidate"] == pytest.approx(
            metrics.set_accuracy, abs=0.01)
    assert code == 1 and checks["clean/set_accuracy"]["status"] == "fail"


# ---------------------------------------------------------------- mismatches: exit 2

def _mismatch(capsys, base: Path, cand: Path, *needles: str) -> None:
    code, out, err = gate(capsys, base, cand)
    assert code == 2, (out, err)
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    for needle in needles:
        assert needle in err


def test_mismatch_different_benchmark_hash(tmp_path, bench176, capsys):
    other = write_benchmark(tmp_path / "other", 176)
    other.write_text(other.read_text().replace('"im_1_correct": "A"', '"im_1_correct": "A" ', 1))
    base = clean_run(tmp_path / "base", bench176, 176, 100)
    cand = clean_run(tmp_path / "cand", other, 176, 100)
    _mismatch(capsys, base, cand, "different benchmarks", "sha256")


def test_mismatch_different_pair_sets(tmp_path, capsys):
    full = write_benchmark(tmp_path / "full", 40)
    base = clean_run(tmp_path / "base", full, 40, 20)
    cand = clean_run(tmp_path / "cand", full, 40, 20)
    lines = (cand / "predictions" / "clean.jsonl").read_text().splitlines()
    (cand / "predictions" / "clean.jsonl").write_text("\n".join(lines[:-2]) + "\n")  # drop g0039
    _mismatch(capsys, base, cand, "pair sets differ", "g0039", "only in baseline")


def test_mismatch_different_modes(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 100, mode="mc")
    cand = clean_run(tmp_path / "cand", bench176, 176, 100, mode="gd")
    _mismatch(capsys, base, cand, "answering modes", "mc", "gd")


def test_mismatch_different_probe_params(tmp_path, bench176, capsys):
    clean = {"outcomes": outcomes(176, both=100, one=76)}
    other = {"name": "gaussian_noise", "params": {"severity": 4, "target": "both"}}
    base = write_run(tmp_path / "base", bench176, {
        "clean": clean, "noise": {"outcomes": outcomes(176, both=90, one=86), "probe": NOISE}})
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": clean, "noise": {"outcomes": outcomes(176, both=90, one=86), "probe": other}})
    _mismatch(capsys, base, cand, "condition 'noise'", "severity: 3 vs 4")


def test_mismatch_different_conditions_and_config_selection(tmp_path, bench176, capsys):
    clean = {"outcomes": outcomes(176, both=100, one=76)}
    base = write_run(tmp_path / "base", bench176, {
        "clean": clean, "noise": {"outcomes": outcomes(176, both=90, one=86), "probe": NOISE}})
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": clean, "option_swap": {"outcomes": outcomes(176, both=90, one=86), "probe": SWAP}})
    _mismatch(capsys, base, cand, "different conditions", "only in baseline: noise",
              "only in candidate: option_swap")
    only_clean = tmp_path / "clean.yaml"
    only_clean.write_text("conditions: [clean]\n")
    code, report = gate_json(capsys, base, cand, "--config", only_clean)
    assert code == 0 and report["conditions"] == ["clean"]


def test_mismatch_different_prompting_strategies(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 100)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100)
    for run, prompt in ((base, "direct"), (cand, "cot")):
        summary = json.loads((run / "summary.json").read_text())
        summary["prompt"] = prompt
        (run / "summary.json").write_text(json.dumps(summary))
    _mismatch(capsys, base, cand, "prompting strategies", "direct", "cot")


def test_mismatch_different_seeds(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 100, seed=0)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100, seed=1)
    _mismatch(capsys, base, cand, "seeds")


def test_mismatch_different_gold_under_a_probe(tmp_path, bench176, capsys):
    clean = {"outcomes": outcomes(176, both=100, one=76)}
    probe = {"name": "image_swap", "params": {}}
    base = write_run(tmp_path / "base", bench176, {
        "clean": clean, "swap": {"outcomes": outcomes(176, both=100, one=76), "probe": probe}})
    cand = write_run(tmp_path / "cand", bench176, {
        "clean": clean, "swap": {"outcomes": outcomes(176, both=100, one=76), "probe": probe,
                                 "gold": swapped_gold(load_benchmark(bench176))}})
    _mismatch(capsys, base, cand, "gold answers differ", "condition 'swap'")


# ---------------------------------------------------------------- finding the benchmark

def test_gold_from_benchmark_path_when_records_lack_correct(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 120, with_correct=False)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100, with_correct=False)
    code, report = gate_json(capsys, base, cand)
    assert code == 1 and report["benchmark"]["path"] == str(bench176.resolve())


def test_changed_benchmark_file_is_refused(tmp_path, capsys):
    dataset = write_benchmark(tmp_path / "b", 30)
    base = clean_run(tmp_path / "base", dataset, 30, 20, with_correct=False)
    cand = clean_run(tmp_path / "cand", dataset, 30, 20, with_correct=False)
    dataset.write_text(dataset.read_text() + "\n")  # edited after the runs: a new hash
    code, out, err = gate(capsys, base, cand)
    assert code == 2 and "no field 'correct'" in err and "content hash" in err
    assert "--annotations" in err


def test_relative_benchmark_path_resolves_beside_the_run(tmp_path, capsys):
    dataset = write_benchmark(tmp_path / "runs" / "bench", 30)
    base = clean_run(tmp_path / "runs" / "base", dataset, 30, 20, with_correct=False,
                     bench_path="../bench/dataset.json")
    cand = clean_run(tmp_path / "runs" / "cand", dataset, 30, 20, with_correct=False,
                     bench_path="../bench/dataset.json")
    code, report = gate_json(capsys, base / "summary.json", cand)
    assert code == 0 and report["checks"]


def test_per_category_gating_without_benchmark_is_an_error(tmp_path, capsys):
    dataset = write_benchmark(tmp_path / "b", 30)
    base = clean_run(tmp_path / "base", dataset, 30, 20, bench_path="/nonexistent/dataset.json")
    cand = clean_run(tmp_path / "cand", dataset, 30, 20, bench_path="/nonexistent/dataset.json")
    code, report = gate_json(capsys, base, cand)  # records carry 'correct': categories skipped
    assert code == 0 and not any(c["category"] for c in report["checks"])
    assert any("per-category" in n for n in report["notes"])
    gating = tmp_path / "g.yaml"
    gating.write_text("per_category:\n  metrics:\n    set_accuracy: {gate: true}\n")
    code, out, err = gate(capsys, base, cand, "--config", gating)
    assert code == 2 and "--annotations" in err
    code, report = gate_json(capsys, base, cand, "--config", gating, "--annotations", dataset)
    assert code == 0 and any(c["category"] for c in report["checks"])


# ---------------------------------------------------------------- bad input: exit 2, one line

@pytest.mark.parametrize("edit, needle", [
    (lambda s: s.pop("benchmark"), "missing field 'benchmark'"),
    (lambda s: s["benchmark"].pop("content_hash"), "'benchmark.content_hash'"),
    (lambda s: s.pop("mode"), "missing field 'mode'"),
    (lambda s: s["conditions"].pop("clean"), "'conditions.clean'"),
    (lambda s: s["conditions"]["noise"].pop("probe"), "'conditions.noise.probe'"),
    (lambda s: s["conditions"]["noise"]["probe"].update(params=[1]),
     "'conditions.noise.probe.params'"),
    (lambda s: s.update(seed="zero"), "field 'seed' must be int"),
])
def test_bad_summary_fields(tmp_path, bench176, capsys, edit, needle):
    runs = {"clean": {"outcomes": outcomes(176, both=100, one=76)},
            "noise": {"outcomes": outcomes(176, both=90, one=86), "probe": NOISE}}
    base = write_run(tmp_path / "base", bench176, runs)
    cand = write_run(tmp_path / "cand", bench176, runs)
    summary = json.loads((cand / "summary.json").read_text())
    edit(summary)
    (cand / "summary.json").write_text(json.dumps(summary))
    code, out, err = gate(capsys, base, cand)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(cand / "summary.json") in err and needle in err


def test_clean_gold_must_match_the_benchmark(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 100)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100)
    preds = cand / "predictions" / "clean.jsonl"
    preds.write_text(preds.read_text().replace('"correct": "A"', '"correct": "B"', 1))
    code, _, err = gate(capsys, base, cand)
    assert code == 2 and "clean.jsonl: pair g0000 image 1: field 'correct' is B" in err


def test_condition_names_map_to_the_runners_file_names(tmp_path, bench176, capsys):
    """The runner writes ``predictions/<name>.jsonl`` with unsafe characters replaced by ``_``."""
    clean = {"outcomes": outcomes(176, both=100, one=76)}
    probe = {"name": "blend", "params": {"weight": 0.5}}
    runs = [write_run(tmp_path / side, bench176, {
        "clean": clean,
        "blend w/0.5": {"outcomes": outcomes(176, both=90, one=86), "probe": probe}})
        for side in ("base", "cand")]
    assert (runs[0] / "predictions" / "blend_w_0.5.jsonl").is_file()
    code, report = gate_json(capsys, *runs)
    assert code == 0 and "blend w/0.5" in report["conditions"]


def test_bad_files(tmp_path, bench176, capsys):
    base = clean_run(tmp_path / "base", bench176, 176, 100)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100)
    code, _, err = gate(capsys, base, tmp_path / "missing")
    assert code == 2 and "missing" in err
    (cand / "summary.json").write_text("{not json")
    code, _, err = gate(capsys, base, cand)
    assert code == 2 and "summary.json" in err and "not valid JSON" in err
    cand = clean_run(tmp_path / "cand2", bench176, 176, 100)
    preds = cand / "predictions" / "clean.jsonl"
    preds.write_text(preds.read_text().replace('"correct": "A"', '"correct": "C"', 1))
    code, _, err = gate(capsys, base, cand)
    assert code == 2 and "clean.jsonl: line 1: field 'correct'" in err
    preds.unlink()
    code, _, err = gate(capsys, base, cand)
    assert code == 2 and "clean.jsonl" in err and "no such file" in err
    code, _, err = gate(capsys, base, base, "--config", tmp_path / "nope.yaml")
    assert code == 2 and "nope.yaml" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("clean:\n  set_accurcy: {margin: 2}\n")
    code, _, err = gate(capsys, base, base, "--config", bad)
    assert code == 2 and "bad.yaml" in err and "clean.set_accurcy" in err
    code, _, err = gate(capsys, base)
    assert code == 2 and "candidate" in err


def test_console_script_runs_without_traceback(tmp_path, bench176):
    base = clean_run(tmp_path / "base", bench176, 176, 120)
    cand = clean_run(tmp_path / "cand", bench176, 176, 100)
    proc = subprocess.run([sys.executable, "-m", "robustness", "gate", str(base), str(cand)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "verdict: FAIL" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "robustness", "gate", str(base), str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_builders_give_the_promised_outcomes(bench176):
    """The outcome codes mean what the other tests assume (guards their known truth)."""
    bench = load_benchmark(bench176)
    rep = score_pairs(bench, choices_for(bench, outcomes(176, both=40, one=30, none=60,
                                                         invalid=46)))
    assert rep.overall.set_accuracy == pytest.approx(100 * 40 / 176)
    assert rep.overall.valid_pairs == 130
    assert rep.overall.confusion == pytest.approx(100 * 30 / 130)
    assert rep.overall.invalid_rate == pytest.approx(100 * 46 / 352)
