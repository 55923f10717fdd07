"""``robustness report`` over a two-model sweep: overlaid curves, intervals, the gate's verdicts,
the markdown twin and ``sweep_summary.html``; runs on different benchmarks are refused."""

from __future__ import annotations

import re

import pytest

from robustness.cli import main
from tests.helpers.browser import render
from tests.robustness.report.test_run_page import needs_chromium


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    code = main(["-m", "model=reference,reference_biased", "dataset.pairs=12", "explain=none",
                 "probe=[option_swap,gaussian_noise]", "probe.gaussian_noise.severities=[2,4]",
                 "logger=none", "resamples=200", "progress=false", f"cache.dir={tmp / 'cache'}",
                 f"hydra.sweep.dir={tmp / 'sweep'}"])
    assert code == 0
    return tmp / "sweep"


def test_report_over_a_sweep_overlays_the_models(sweep, tmp_path, capsys):
    out = tmp_path / "compare.html"
    assert main(["report", str(sweep), "--out", str(out)]) == 0
    html = out.read_text()
    # one severity chart with a line per model, each with its interval band
    chart = re.search(r'<svg[^>]*aria-label="gaussian_noise: set accuracy".*?</svg>', html, re.S)
    assert chart and chart.group(0).count("<polyline") == 2
    assert chart.group(0).count("<polygon") == 2
    assert "reference · mc" in chart.group(0) and "reference_biased · mc" in chart.group(0)
    assert "Gate: each run against reference · mc" in html
    assert re.search(r"reference_biased · mc: (pass|fail)</h3>", html)
    md = out.with_suffix(".md").read_text()
    assert "| gaussian_noise@4 | reference_biased · mc |" in md
    assert "## Gate: reference_biased · mc vs reference · mc" in md
    assert (sweep / "sweep_summary.html").is_file() and (sweep / "sweep_summary.md").is_file()


def test_baseline_can_be_chosen(sweep, tmp_path):
    out = tmp_path / "compare.html"
    jobs = sorted(p for p in sweep.iterdir() if (p / "summary.json").is_file())
    assert main(["report", str(jobs[0]), "--baseline", str(jobs[1]), "--out", str(out)]) == 0
    assert "Gate: each run against reference_biased · mc" in out.read_text()


def test_runs_on_different_benchmarks_are_one_line_exit_2(sweep, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["dataset.pairs=6", "probe=[]", "explain=none", "logger=none", "progress=false",
                 f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={other}"]) == 0
    capsys.readouterr()
    job = next(p for p in sweep.iterdir() if (p / "summary.json").is_file())
    code = main(["report", str(job), str(other), "--out", str(tmp_path / "x.html")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "benchmark.content_hash" in err and "same benchmark" in err
    assert not (tmp_path / "x.html").exists()


def test_missing_run_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "x.html")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_comparison_renders_in_chromium(sweep, tmp_path):
    needs_chromium()
    page = render(sweep / "sweep_summary.html", tmp_path / "compare.png",
                  profile=tmp_path / "profile")
    assert page.console == [] and page.requests == []
    assert "Robustness curves" in page.dom
