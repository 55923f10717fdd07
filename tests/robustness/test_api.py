"""The Python API: evaluate() equals the command line, a second call is served from the cache;
score() and gate.compare() are the commands as functions."""

from __future__ import annotations

import json

import pytest

import robustness
from robustness.cli import main
from robustness.errors import ConfigError

ARGS = ["model=reference", "probe=[option_swap]", "logger=none", "explain=none",
        "dataset.pairs=8", "dataset.size=96", "resamples=100"]
# what differs between two runs of the same experiment by construction
VOLATILE = {"model_stats", "run_dir", "started_at", "elapsed_s", "cache", "config", "usage"}


def comparable(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in VOLATILE}
    out["conditions"] = {name: {k: v for k, v in cond.items()
                                if k not in ("cache", "elapsed_s", "answer_s")}
                         for name, cond in summary["conditions"].items()}
    return out


def test_evaluate_equals_the_cli_and_is_served_from_cache(tmp_path):
    cache = f"cache.dir={tmp_path / 'cache'}"
    first = robustness.evaluate([*ARGS, cache], run_dir=tmp_path / "api")
    assert first.summary["mode"] == "mc" and first.summary["model"] == "reference"
    assert first.summary["dataset"] == "phantom" and first.conditions == ["clean", "option_swap"]
    assert json.loads(first.summary_path.read_text()) == first.summary
    assert len(first.answers["clean"]) == 16 and first.metric("clean") is not None
    assert first.summary["uncertainty"] == {"method": "pairs", "clusters": 8}  # no shared images
    second = robustness.evaluate([*ARGS, cache], run_dir=tmp_path / "api2")
    assert second.summary["cache"]["misses"] == 0 and second.summary["cache"]["hits"] == 32
    assert comparable(second.summary) == comparable(first.summary)
    assert main([*ARGS, cache, f"hydra.run.dir={tmp_path / 'cli'}"]) == 0
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert comparable(cli) == comparable(first.summary)
    # the gate sees no difference between the API's run and the CLI's
    verdict = robustness.gate.compare(first.run_dir, tmp_path / "cli", rules="strict")
    assert verdict.verdict == "pass"


def test_evaluate_shortcuts_and_errors(tmp_path):
    result = robustness.evaluate(model="reference", mode="gd", probe=[], logger="none",
                                 explain="none", run_dir=tmp_path / "gd",
                                 **{"dataset.pairs": 4, "dataset.size": 96,
                                    "cache.dir": str(tmp_path / "cache")})
    assert result.summary["mode"] == "gd" and result.conditions == ["clean"]
    with pytest.raises(ConfigError, match="seed: expected an integer"):
        robustness.evaluate(["seed=abc"], run_dir=tmp_path / "bad")


def test_score_is_the_command_as_a_function(tmp_path, write_dataset, capsys):
    from tests.helpers.records import make_pair_record

    annotations = write_dataset({"1": make_pair_record("A", "B")})
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"pair_id": "1", "image": i, "choice": c}) + "\n"
                             for i, c in ((1, "A"), (2, "A"))))
    result = robustness.score(preds, annotations)
    assert main(["score", str(preds), "--annotations", str(annotations), "--json"]) == 0
    assert result == json.loads(capsys.readouterr().out)
    assert result["overall"]["confusion"] == 100.0 and result["n_pairs"] == 1
