"""Sweeps that search and launchers that share cores: the objective a sweeper optimises, the
worst-case corruption search, submitit_local and joblib jobs, and plugins named when missing."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from robustness.cli import main
from robustness.errors import ConfigError
from robustness.objective import check_objective, objective_value

SUMMARY = {"conditions": {
    "clean": {"overall": {"set_accuracy": 80.0}},
    "gaussian_noise@3": {"overall": {"set_accuracy": 60.0},
                         "shift": {"set_accuracy": -20.0}},
}}
SMALL = ["dataset.pairs=16", "logger=none", "explain=none", "resamples=50"]


def test_objective_reads_a_metric_of_the_summary():
    assert objective_value(SUMMARY, {"metric": "clean/set_accuracy",
                                     "direction": "maximize"}) == 80.0
    assert objective_value(SUMMARY, {"metric": "probe/shift/set_accuracy",
                                     "direction": "minimize"}) == -20.0
    assert objective_value(SUMMARY, {"metric": None}) is None
    for bad in ("clean", "clean/x/y/z", "clean/other/set_accuracy", 3):
        with pytest.raises(ConfigError, match="objective.metric"):
            check_objective({"metric": bad, "direction": "maximize"})
    with pytest.raises(ConfigError, match="objective.direction"):
        check_objective({"metric": "clean/set_accuracy", "direction": "down"})
    with pytest.raises(ConfigError, match="no condition 'blur@2'"):
        objective_value(SUMMARY, {"metric": "blur@2/set_accuracy", "direction": "maximize"})


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (an optional extra; [dev] installs it)")


def test_a_worst_case_corruption_search_finds_a_weak_spot(tmp_path):
    _needs("hydra_plugins.hydra_optuna_sweeper")
    cache = f"cache.dir={tmp_path / 'cache'}"
    assert main(["probe=[]", *SMALL, cache, f"hydra.run.dir={tmp_path / 'clean'}"]) == 0
    clean = json.loads((tmp_path / "clean" / "summary.json").read_text())
    clean_acc = clean["conditions"]["clean"]["overall"]["set_accuracy"]
    sweep = tmp_path / "search"
    assert main(["-m", "hparams_search=worst_case_corruption", "hydra.sweeper.n_trials=6",
                 *SMALL, cache, f"hydra.sweep.dir={sweep}"]) == 0
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_value"] < clean_acc  # a real metric was minimised, not an exit code
    trials = sorted(p for p in sweep.iterdir() if (p / "summary.json").is_file())
    assert len(trials) == 6
    values = [json.loads((t / "summary.json").read_text())["conditions"] for t in trials]
    worst = min(c[n]["overall"]["set_accuracy"] for c in values for n in c if n != "clean")
    assert result["best_value"] == worst


def test_a_submitit_local_sweep_of_two_jobs_completes(tmp_path):
    _needs("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    assert main(["-m", "hydra/launcher=submitit_local", "mode=mc,gd", "probe=[]", *SMALL,
                 "dataset.pairs=4", f"cache.dir={tmp_path / 'cache'}",
                 f"hydra.sweep.dir={sweep}"]) == 0
    summaries = sorted(sweep.glob("*/summary.json"))
    assert len(summaries) == 2 and (sweep / "sweep_summary.md").is_file()
    assert {json.loads(p.read_text())["mode"] for p in summaries} == {"mc", "gd"}
    assert all(json.loads(p.read_text())["threads"] == 1 for p in summaries)  # cpus_per_task


def test_joblib_jobs_split_the_cores(tmp_path):
    _needs("hydra_plugins.hydra_joblib_launcher")
    from robustness.experiment import available_cores

    sweep = tmp_path / "sweep"
    assert main(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "mode=mc,gd",
                 "probe=[]", *SMALL, "dataset.pairs=4", f"cache.dir={tmp_path / 'cache'}",
                 f"hydra.sweep.dir={sweep}"]) == 0
    threads = {json.loads(p.read_text())["threads"] for p in sweep.glob("*/summary.json")}
    assert threads == {max(1, available_cores() // 2)}


def test_a_missing_sweeper_plugin_names_its_extra(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if "optuna" in name else real(name, *a))
    assert main(["-m", "hparams_search=worst_case_corruption"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mediconfusion-robustness[optuna]" in err[0]


def test_threads_setting_is_checked(tmp_path, capsys):
    assert main(["threads=0", "probe=[]", *SMALL, f"hydra.run.dir={tmp_path}"]) == 2
    assert "threads: must be at least 1" in capsys.readouterr().err
