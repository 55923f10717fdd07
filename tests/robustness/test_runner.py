"""The main job through the real Hydra app and runner, with a scripted model for speed.

The runner, probes, metrics, cache and trackers are the real ones; the model and its letter
mode are scripted (``tests/helpers/runner_scripted.py``) so these tests take seconds. End-to-end runs
of real models live in ``tests/test_runner_e2e.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.paths import TEST_CONF
from robustness.cli import main
from robustness.shifts import SHIFT_KEYS
from tests.helpers.runner_scripted import write_benchmark
from tests.helpers.wandb_records import run_facts

METRIC_KEYS = {"set_accuracy", "individual_accuracy", "confusion", "invalid_rate", "precision",
               "valid_pairs"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"), n_pairs=12)


def cli_args(tmp: Path, bench: Path, *extra: str, run: str = "run") -> list[str]:
    return [f"hydra.searchpath=[file://{TEST_CONF}]", "model=scripted", "mode=scripted_mc",
            "dataset=mediconfusion", f"dataset.root={bench}", f"cache.dir={tmp / 'cache'}",
            f"hydra.run.dir={tmp / run}", "progress=false", "resamples=200", *extra]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_the_contract_outputs(tmp_path, bench, capsys):
    probes = "probe=[option_swap,gaussian_noise,swap_images]"
    code = main(cli_args(tmp_path, bench, probes, "probe.gaussian_noise.severities=[2]",
                         "logger=wandb"))
    assert code == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "scripted" and summary["mode"] == "scripted_mc"
    assert summary["dataset"] == "mediconfusion" and summary["n_pairs"] == 12
    assert summary["seed"] == 0
    bench_info = summary["benchmark"]
    assert bench_info["n_pairs"] == 12 and bench_info["path"] == str(bench / "dataset.json")
    assert len(bench_info["content_hash"]) == 64
    names = ["clean", "option_swap", "gaussian_noise@2", "swap_images"]
    assert list(summary["conditions"]) == names
    for name, cond in summary["conditions"].items():
        assert set(cond["overall"]) == METRIC_KEYS
        assert set(cond["per_category"]) == {"Cerebral", "Vascular", "Pulmonary"}
        assert set(cond["probe"]) == {"name", "params"}
        if name == "clean":
            assert "shift" not in cond
        else:
            assert set(cond["shift"]) == set(SHIFT_KEYS)
            assert set(cond["shift_per_category"]) == set(cond["per_category"])
            lo, hi = cond["shift"]["set_accuracy_ci"]
            assert lo <= cond["shift"]["set_accuracy"] <= hi
    assert summary["conditions"]["gaussian_noise@2"]["probe"]["params"]["severity"] == 2
    assert "order_consistency" in summary["conditions"]["option_swap"]["probe_metrics"]

    annotations = json.loads((bench / "dataset.json").read_text())
    for name in names:
        records = read_jsonl(run / "predictions" / f"{name}.jsonl")
        assert [(r["pair_id"], r["image"]) for r in records] == \
               [(pid, im) for pid in annotations for im in (1, 2)]
        for r in records:  # every choice in the pair's original labels
            shown = r["displayed_choice"]
            assert r["choice"] == (None if shown is None else
                                   r["query"]["label_map"]["AB".index(shown)])
    swapped = read_jsonl(run / "predictions" / "swap_images.jsonl")
    assert all(r["correct"] == annotations[r["pair_id"]][f"im_{3 - r['image']}_correct"]
               for r in swapped)  # the truth moves with the image
    flipped = read_jsonl(run / "predictions" / "option_swap.jsonl")
    assert all(r["query"]["label_map"] == ["B", "A"] for r in flipped)

    # each predictions file scores (robustness score) exactly as the summary says
    capsys.readouterr()
    assert main(["score", str(run / "predictions" / "option_swap.jsonl"), "--annotations",
                 str(bench / "dataset.json"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["overall"] == summary["conditions"]["option_swap"]["overall"]

    report = (run / "report.md").read_text()
    for name in names:
        assert f"| {name} |" in report
    assert (run / "examples" / "swap_images.png").is_file()

    facts = run_facts(run)  # the offline W&B run, inside the run directory
    assert facts["exit_code"] == 0 and facts["n_runs"] == 1
    assert facts["group"] == "default" and facts["job_type"] == "scripted_mc"
    assert {"model:scripted", "mode:scripted_mc", "probe:option_swap"} <= set(facts["tags"])
    assert facts["summary"]["option_swap/set_accuracy"] == \
           summary["conditions"]["option_swap"]["overall"]["set_accuracy"]
    assert facts["summary"]["option_swap/shift/flip_rate"] == \
           summary["conditions"]["option_swap"]["shift"]["flip_rate"]
    assert facts["summary"]["answers/nrows"] == 12 * 2 * len(names)
    assert facts["config"]["choices"]["model"] == "scripted"
    assert any(k.startswith("examples/") for k in facts["summary"])


def test_second_identical_run_is_served_from_the_cache(tmp_path, bench):
    counts = tmp_path / "requests.txt"
    extra = ("probe=[option_swap,paraphrase]", "logger=none", f"model.count_file={counts}")
    assert main(cli_args(tmp_path, bench, *extra, run="first")) == 0
    asked_first = sum(int(line.split()[1]) for line in counts.read_text().splitlines())
    assert asked_first == 3 * 24
    assert main(cli_args(tmp_path, bench, *extra, run="second")) == 0
    asked_total = sum(int(line.split()[1]) for line in counts.read_text().splitlines())
    assert asked_total == asked_first  # the model was asked nothing the second time
    second = json.loads((tmp_path / "second" / "summary.json").read_text())
    assert second["cache"]["misses"] == 0 and second["cache"]["hits"] == 72
    for name in ("clean", "option_swap", "paraphrase"):
        a = (tmp_path / "first" / "predictions" / f"{name}.jsonl").read_text()
        b = (tmp_path / "second" / "predictions" / f"{name}.jsonl").read_text()
        assert a == b


def test_token_usage_and_cost_count_what_this_run_spent(tmp_path, bench):
    extra = ("probe=[option_swap]", "logger=none",
             "+model.prices={input_per_million: 2.0, output_per_million: 10.0}")
    assert main(cli_args(tmp_path, bench, *extra, run="first")) == 0
    assert main(cli_args(tmp_path, bench, *extra, run="second")) == 0
    first = json.loads((tmp_path / "first" / "summary.json").read_text())["usage"]
    second = json.loads((tmp_path / "second" / "summary.json").read_text())["usage"]
    # the scripted model reports 10 input and 3 output tokens per request; 48 answers
    assert (first["input_tokens"], first["output_tokens"]) == (480, 144)
    assert first["estimated_cost_usd"] == round(480 * 2e-6 + 144 * 10e-6, 6)
    assert first["model"]["this_run"]["input_tokens"] == 480
    assert second["estimated_cost_usd"] == first["estimated_cost_usd"]  # the answers' worth
    assert second["model"]["this_run"] == {"input_tokens": 0, "output_tokens": 0}


def test_probe_list_empty_runs_clean_only_without_wandb(tmp_path, bench):
    assert main(cli_args(tmp_path, bench, "probe=[]", "logger=none")) == 0
    run = tmp_path / "run"
    assert [p.name for p in (run / "predictions").iterdir()] == ["clean.jsonl"]
    assert not (run / "wandb").exists()
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["conditions"]) == ["clean"]


def test_sweep_gives_each_job_its_own_run_and_wandb_run(tmp_path, bench):
    sweep = tmp_path / "sweep"
    args = cli_args(tmp_path, bench, "probe=[option_swap]", "logger=wandb",
                    f"hydra.sweep.dir={sweep}")
    code = main(["-m", *args, "model=scripted,scripted_biased"])
    assert code == 0
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "summary.json").exists())
    assert [p.name for p in jobs] == ["0_scripted_scripted_mc", "1_scripted_biased_scripted_mc"]
    bias = {}
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        facts = run_facts(job)
        assert facts["n_runs"] == 1 and facts["exit_code"] == 0
        assert f"model:{summary['model']}" in facts["tags"]
        bias[summary["model"]] = summary["conditions"]["option_swap"]["probe_metrics"][
            "position_bias"]
    assert bias["scripted_biased"] > bias["scripted"] + 10
    table = (sweep / "sweep_summary.md").read_text()  # one table over both jobs
    assert "| 0_scripted_scripted_mc | scripted |" in table
    assert "| 1_scripted_biased_scripted_mc | scripted_biased |" in table
    assert "position_bias" in table


def test_missing_images_say_how_to_download(tmp_path, capsys):
    root = tmp_path / "mc"
    root.mkdir()
    (root / "dataset.json").write_text("{}")
    code = main(cli_args(tmp_path, root, "probe=[]", "logger=none"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "robustness data download" in err[0]


def test_bad_command_line_is_one_line_exit_2(tmp_path, bench, capsys):
    code = main(cli_args(tmp_path, bench, "model=no_such_model"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "model/no_such_model" in err[0] and "scripted" in err[0]
    code = main(cli_args(tmp_path, bench, "batch_pairs=0", "logger=none", "probe=[]"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["robustness: error: batch_pairs: must be at least 1, got 0"]
    # a component's constructor rejecting a value (Hydra's instantiate wraps the error)
    code = main(cli_args(tmp_path, bench, "explain=integrated_gradients",
                         "explain.method.n_steps=0", "logger=none", "probe=[]"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        "robustness: error: explain.method.n_steps: must be a positive integer, got 0"]


def test_secrets_never_reach_the_run_folder(tmp_path, bench, monkeypatch):
    env_secret, cli_secret = "sk-env-secret-0123456789", "sk-cli-secret-9876543210"
    monkeypatch.setenv("OPENAI_API_KEY", env_secret)
    code = main(cli_args(tmp_path, bench, "probe=[option_swap]", "logger=wandb",
                         f"+service.api_key={cli_secret}",
                         "+service.note=key ${oc.env:OPENAI_API_KEY}"))
    assert code == 0
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert env_secret.encode() not in data, path
            assert cli_secret.encode() not in data, path
    facts = run_facts(tmp_path / "run")
    assert facts["config"]["service"]["api_key"] == "***"


def test_parallel_sweep_reports_a_failed_job_with_exit_2(tmp_path, bench, capfd):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    args = cli_args(tmp_path, bench, "probe=[]", "logger=none", f"hydra.sweep.dir={sweep}",
                    "hydra/launcher=joblib")
    code = main(["-m", *args, "batch_pairs=4,0"])  # the second job has a bad setting
    err = capfd.readouterr().err
    assert code == 2
    assert "robustness: error: batch_pairs: must be at least 1, got 0" in err
    assert (sweep / "0_scripted_scripted_mc" / "summary.json").is_file()
    assert not (sweep / "1_scripted_scripted_mc" / "summary.json").exists()


def test_cache_can_be_switched_off(tmp_path, bench):
    counts = tmp_path / "requests.txt"
    extra = ("probe=[]", "logger=none", f"model.count_file={counts}", "cache.enabled=false")
    assert main(cli_args(tmp_path, bench, *extra, run="first")) == 0
    assert main(cli_args(tmp_path, bench, *extra, run="second")) == 0
    assert sum(int(line.split()[1]) for line in counts.read_text().splitlines()) == 48
    assert not (tmp_path / "cache" / "answers").exists()


def test_cfg_and_help_print_without_running(tmp_path, bench, capsys):
    args = cli_args(tmp_path, bench, "probe=[option_swap]")
    assert main([*args, "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "option_swap:" in out and "_target_: tests.helpers.runner_scripted.ScriptedAdapter" in out
    assert main([*args, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: robustness" in out and "probe:" in out
    assert not (tmp_path / "run" / "summary.json").exists()


def test_missing_config_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROBUSTNESS_CONF_DIR", str(tmp_path / "nowhere"))
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config folder not found" in err[0]
