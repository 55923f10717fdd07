"""The default run's offline W&B files, read back record by record: curve history on native
axes, charts, probe metrics, intervals and artifacts with lineage."""

from __future__ import annotations

import json

from tests.helpers.wandb_records import run_facts


def test_default_run_charts_itself_in_wandb(default_run):
    summary = json.loads((default_run / "summary.json").read_text())
    facts = run_facts(default_run)
    assert facts["exit_code"] == 0
    s = facts["summary"]
    # probe metrics, intervals and parameters as summary keys
    swap = summary["conditions"]["option_swap"]["probe_metrics"]
    assert s["option_swap/probe/order_consistency"] == swap["order_consistency"]
    assert s["option_swap/probe/position_bias"] == swap["position_bias"]
    assert s["clean/ci/set_accuracy"] == summary["conditions"]["clean"]["ci"]["set_accuracy"]
    noisy = summary["conditions"]["gaussian_noise@3"]
    assert s["gaussian_noise@3/ci/shift_set_accuracy"] == noisy["shift"]["set_accuracy_ci"]
    assert s["gaussian_noise@3/param/severity"] == 3

    # the severity curve: one history row per severity (clean at 0), on its own x axis
    axis = "curve/gaussian_noise/severity"
    rows = [r for r in facts["history"] if axis in r]
    assert [r[axis] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[0]["curve/gaussian_noise/set_accuracy"] == \
        summary["conditions"]["clean"]["overall"]["set_accuracy"]
    assert rows[3]["curve/gaussian_noise/confusion_low"] == noisy["ci"]["confusion"][0]
    assert {"name": "", "glob": "curve/gaussian_noise/*", "step": axis} in facts["metrics"]

    # wandb.plot charts (custom panels in the config) and the heatmap
    charts = facts["config"]["_wandb"]["visualize"]
    assert charts["charts/curve_gaussian_noise"]["panel_config"]["panelDefId"] == \
        "wandb/lineseries/v0"
    assert charts["charts/shift_set_accuracy"]["panel_config"]["panelDefId"] == "wandb/bar/v0"
    assert "charts/position_bias" in charts
    logged = {k for row in facts["history"] for k in row}
    assert {"charts/category_heatmap/_type", "charts/category_heatmap_table/_type",
            "charts/shift_set_accuracy_ci/_type"} <= logged

    # artifacts: benchmark and model used by the run, results logged by it
    arts = {a["type"]: a for a in facts["artifacts"]}
    bench_hash = summary["benchmark"]["content_hash"]
    assert arts["dataset"]["used"] and bench_hash[:12] in arts["dataset"]["name"]
    assert arts["dataset"]["metadata"]["content_hash"] == bench_hash
    assert arts["model"]["used"] and arts["model"]["metadata"]["weights"] == \
        summary["model_identity"]["weights"]
    assert not arts["robustness-results"]["used"]
    assert {"summary.json", "predictions/clean.jsonl", "predictions/option_swap.jsonl"} <= \
        set(arts["robustness-results"]["paths"])
    assert not any(str(default_run) in json.dumps(a["metadata"]) for a in facts["artifacts"])
