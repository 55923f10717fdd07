"""``robustness dashboard``: the workspace is built with wandb-workspaces offline, its panels
query exactly the keys a default run logs, and saving without a login is one line, exit 2."""

from __future__ import annotations

import json

from robustness.cli import main
from tests.helpers.wandb_records import run_facts


def dry_run(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["dashboard", "--entity", "me", "--project", "robustness", *args,
                 "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def panel_keys(spec: dict) -> set[str]:
    keys = set()
    for section in spec["sections"]:
        for panel in section["panels"]:
            query = panel["query"]
            keys.update(query.get("metrics", []))
            keys.update(query.get("mediaKeys", []))
            if "xAxis" in query:
                keys.add(query["xAxis"])
    return keys


def test_dry_run_lists_the_panels_a_comparison_needs(capsys):
    spec = dry_run(capsys)
    assert spec["group_runs_by"] == ["choices.model"]
    sections = {s["name"]: s["panels"] for s in spec["sections"]}
    assert list(sections) == ["Overview", "Robustness curves", "Shifts", "Position bias",
                              "Per category"]
    curve = sections["Robustness curves"][0]
    assert curve["view"] == "Run History Line Plot"
    assert curve["query"]["xAxis"] == "curve/gaussian_noise/severity"
    assert curve["query"]["metrics"] == ["curve/gaussian_noise/set_accuracy"]
    assert sections["Overview"][0]["query"]["groupBy"] == "choices.value.model"
    assert "gaussian_noise@5/shift/set_accuracy" in sections["Shifts"][0]["query"]["metrics"]


def test_every_panel_queries_a_key_the_default_run_logged(default_run, capsys):
    facts = run_facts(default_run)
    logged = set(facts["summary"]) | {k for row in facts["history"] for k in row}
    logged |= {k.split("/_type")[0] for k in logged if k.endswith("/_type")}
    for spec in (dry_run(capsys), dry_run(capsys, "--runs", str(default_run))):
        missing = panel_keys(spec) - logged
        assert not missing, missing
    assert any(row.get("choices", {}).get("model") for row in [facts["config"]])


def test_saving_without_a_login_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    empty = tmp_path / "netrc"
    empty.write_text("")
    monkeypatch.setenv("NETRC", str(empty))
    assert main(["dashboard", "--entity", "me", "--project", "p"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wandb login" in err
