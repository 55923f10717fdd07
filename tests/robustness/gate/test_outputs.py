"""The gate's outputs for CI: the --json contract, JUnit XML, the markdown comment, the table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from robustness.cli import main as cli_main
from tests.helpers.gate_runs import BOTH, ONE, outcomes, write_benchmark, write_run

SWAP = {"name": "option_swap", "params": {}}
CHECK_KEYS = {"name", "condition", "metric", "baseline", "candidate", "delta", "ci", "p", "status"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A baseline and a candidate with one failure (clean), warnings and passes."""
    root = tmp_path_factory.mktemp("outputs")
    dataset = write_benchmark(root / "bench", 176)
    base = write_run(root / "base", dataset, {
        "clean": {"outcomes": outcomes(176, both=120, one=56)},
        "option_swap": {"outcomes": outcomes(176, both=110, one=66), "probe": SWAP}}, model="v1")
    cand_clean = [ONE] * 20 + [BOTH] * 100 + [ONE] * 56
    cand = write_run(root / "cand", dataset, {
        "clean": {"outcomes": cand_clean},
        "option_swap": {"outcomes": [ONE] * 20 + [BOTH] * 86 + [ONE] * 70, "probe": SWAP}},
        model="v2")
    return base, cand


def run_gate(capsys, *args) -> tuple[int, str, str]:
    code = cli_main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_contract(runs, capsys):
    code, out, err = run_gate(capsys, *runs, "--json")
    report = json.loads(out)  # stdout is exactly one JSON document
    assert code == 1 and report["verdict"] == "fail"
    assert report["checks"]
    for check in report["checks"]:
        assert CHECK_KEYS <= set(check)
        assert check["status"] in ("pass", "warn", "fail")
        assert isinstance(check["ci"], list) and len(check["ci"]) == 2
        assert check["p"] is None or 0.0 <= check["p"] <= 1.0
        assert check["delta"] == pytest.approx(check["candidate"] - check["baseline"], abs=0.011)
    statuses = {c["status"] for c in report["checks"]}
    assert statuses == {"pass", "warn", "fail"}
    names = [c["name"] for c in report["checks"]]
    assert len(names) == len(set(names))
    assert {"clean/set_accuracy", "clean/confusion", "option_swap/set_accuracy_shift"} <= set(names)


def test_junit_has_one_testcase_per_check(runs, tmp_path, capsys):
    junit = tmp_path / "ci" / "gate.xml"
    code, out, _ = run_gate(capsys, *runs, "--junit", junit, "--json")
    report = json.loads(out)
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(report["checks"]) == int(suite.get("tests"))
    assert [c.get("name") for c in cases] == [c["name"] for c in report["checks"]]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [c["name"] for c in report["checks"] if c["status"] == "fail"]
    assert int(suite.get("failures")) == len(failed) > 0
    warned = [c.get("name") for c in cases if c.find("system-out").text.startswith("WARNING")]
    assert warned == [c["name"] for c in report["checks"] if c["status"] == "warn"]
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["verdict"] == "fail"


def test_markdown_comment(runs, tmp_path, capsys):
    md = tmp_path / "comment.md"
    code, out, _ = run_gate(capsys, *runs, "--markdown", md)
    text = md.read_text(encoding="utf-8")
    assert text.startswith("### ❌ Robustness gate: **FAIL**")
    assert "Candidate `v2` vs baseline `v1`" in text
    assert "| ❌ fail | `clean/set_accuracy` |" in text
    assert "<details><summary>Per category" in text
    assert "verdict: FAIL" in out  # the console table is still printed


def test_console_table(runs, capsys):
    code, out, _ = run_gate(capsys, *runs)
    lines = out.splitlines()
    assert lines[0].startswith("baseline:") and "(v1, mc)" in lines[0]
    header = next(line for line in lines if line.startswith("status"))
    assert "95% CI" in header and "p adj" in header
    assert any(line.startswith("FAIL") and "clean/set_accuracy " in line for line in lines)
    assert any(line.startswith("verdict: FAIL (") for line in lines)


def test_passing_markdown_and_junit(runs, tmp_path, capsys):
    base, _ = runs
    md, junit = tmp_path / "ok.md", tmp_path / "ok.xml"
    code, _, _ = run_gate(capsys, base, base, "--markdown", md, "--junit", junit)
    assert code == 0
    assert md.read_text(encoding="utf-8").startswith("### ✅ Robustness gate: **PASS**")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "0" and suite.findall("testcase")


def test_unwritable_output_is_exit_2(runs, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_gate(capsys, *runs, "--junit", blocker / "gate.xml")
    assert code == 2 and "gate.xml" in err and "Traceback" not in err
