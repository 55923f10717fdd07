"""The pytest plugin, exercised in throw-away pytest sessions (pytester)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import robustness.gate.comparison  # noqa: F401  (imported here: pytester's in-process runs drop
import robustness.gate.report  # noqa: F401   modules first imported inside them, and numpy
import robustness.gate.rules  # noqa: F401    cannot be imported twice in one process)
from tests.helpers.paths import ROOT
from tests.helpers.gate_runs import BOTH, ONE, outcomes, write_benchmark, write_run

pytest_plugins = ["pytester"]
PLUGIN = "robustness.gate.pytest_plugin"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plugin")
    dataset = write_benchmark(root / "bench", 176)
    small = write_benchmark(root / "small", 44)

    def clean(path: Path, data: Path, codes: list[str], **kw) -> Path:
        return write_run(root / path, data, {"clean": {"outcomes": codes}}, **kw)

    return {
        "base": clean(Path("base"), dataset, outcomes(176, both=120, one=56)),
        "regressed": clean(Path("regressed"), dataset, outcomes(176, both=100, one=76)),
        "better": clean(Path("better"), dataset, outcomes(176, both=130, one=46)),
        "gd": clean(Path("gd"), dataset, outcomes(176, both=120, one=56), mode="gd"),
        "small_base": clean(Path("small_base"), small, outcomes(44, both=30, one=14)),
        "small_noisy": clean(Path("small_noisy"), small,
                             [ONE] * 7 + [BOTH] * 25 + [ONE] * 12),
    }


@pytest.fixture
def isolated(pytester, monkeypatch):
    """Inner sessions load only this plugin, whether or not the entry point is installed."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def run_inner(pytester, *args: str):
    # the outer session imported the plugin already, so the inner one cannot assert-rewrite it
    return pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider",
                                        "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_regression_fails_the_test_with_the_gate_summary(isolated, runs):
    isolated.makepyfile(f"""
        def test_gate(robustness_gate):
            robustness_gate({str(runs['regressed'])!r}, baseline={str(runs['base'])!r})
    """)
    result = run_inner(isolated)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustness gate: verdict: FAIL*", "*clean/set_accuracy*"])
    assert "Traceback" not in result.stdout.str()


def test_improvement_passes_and_returns_the_result(isolated, runs, tmp_path):
    isolated.makepyfile(f"""
        def test_gate(robustness_gate):
            result = robustness_gate({str(runs['better'])!r}, baseline={str(runs['base'])!r},
                                     rules="strict", markdown={str(tmp_path / 'g.md')!r},
                                     junit={str(tmp_path / 'g.xml')!r})
            assert result.verdict == "pass" and result.rules.alpha == 0.1
            assert result.checks[0].delta > 0
    """)
    run_inner(isolated).assert_outcomes(passed=1)
    assert "PASS" in (tmp_path / "g.md").read_text(encoding="utf-8")
    assert (tmp_path / "g.xml").read_text().count("<testcase") > 2


def test_noise_passes_with_a_gate_warning(isolated, runs):
    isolated.makepyfile(f"""
        def test_gate(robustness_gate):
            robustness_gate({str(runs['small_noisy'])!r}, baseline={str(runs['small_base'])!r})
    """)
    result = run_inner(isolated)
    result.assert_outcomes(passed=1, warnings=2)  # set accuracy and confusion
    result.stdout.fnmatch_lines(
        ["*GateWarning: robustness gate: clean/set_accuracy*not significant*"])


def test_paths_from_command_line_options_and_ini(isolated, runs, tmp_path):
    isolated.makepyfile("""
        def test_gate(robustness_gate):
            robustness_gate()
    """)
    result = run_inner(isolated, f"--gate-baseline={runs['base']}",
                       f"--gate-candidate={runs['regressed']}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["robustness gate: baseline *base"])
    loose = tmp_path / "loose.yaml"
    loose.write_text("clean:\n  set_accuracy: {margin: 20}\n  confusion: {margin: 20}\n")
    isolated.makeini(f"""
        [pytest]
        gate_baseline = {runs['base']}
        gate_candidate = {runs['regressed']}
        gate_config = {loose}
    """)
    run_inner(isolated).assert_outcomes(passed=1)


def test_no_baseline_skips(isolated):
    isolated.makepyfile("""
        def test_gate(robustness_gate):
            robustness_gate("runs/latest")
    """)
    result = run_inner(isolated, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no baseline (pass --gate-baseline*"])


def test_mismatch_fails_with_one_line(isolated, runs):
    isolated.makepyfile(f"""
        def test_gate(robustness_gate):
            robustness_gate({str(runs['gd'])!r}, baseline={str(runs['base'])!r})
    """)
    result = run_inner(isolated)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustness gate: runs used different answering modes: "
                                 "baseline mc, candidate gd*"])


def test_plugin_leaves_unrelated_suites_alone(isolated):
    isolated.makepyfile("""
        def test_unrelated():
            assert 1 + 1 == 2
    """)
    result = run_inner(isolated)
    result.assert_outcomes(passed=1)
    assert "robustness gate" not in result.stdout.str()
    help_text = run_inner(isolated, "--help").stdout.str()
    assert "--gate-baseline" in help_text and "gate_config" in help_text


def test_plugin_import_is_cheap():
    code = ("import sys, robustness.gate.pytest_plugin as p; "
            "heavy = [m for m in ('numpy', 'yaml', 'torch', 'robustness.gate.comparison', "
            "'robustness.data.mediconfusion') if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_entry_point_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"]["robustness_gate"] == PLUGIN
