"""``report.html`` of the default run: every section, self-contained, and rendered by a real
browser with no console message and no request."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.helpers.browser import chromium, render


def needs_chromium() -> None:
    if chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def test_report_html_has_every_part_and_nothing_external(default_run):
    html = (default_run / "report.html").read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    for heading in ("Conditions", "Robustness curves", "Shifts", "Set accuracy per category",
                    "Option-swap position bias", "Example pairs", "Questions"):
        assert f"<h2>{heading}</h2>" in html
    assert "gaussian_noise: Set accuracy" in html  # the severity curve
    assert "option_swap: the same pixels as clean" in html  # text-only probes drawn once
    questions = json.loads(re.search(r'id="questions">(.*?)</script>', html, re.S).group(1))
    summary = json.loads((default_run / "summary.json").read_text())
    assert len(questions) == 16 * 2 * len(summary["conditions"])
    swapped = [q for q in questions if q["c"] == "option_swap"]
    assert all(q["lm"] == ["B", "A"] for q in swapped)
    images = json.loads(re.search(r'id="images">(.*?)</script>', html, re.S).group(1))
    assert all(q["img"] in images for q in questions if q["c"] == "clean")


def test_report_html_renders_in_chromium(default_run, tmp_path):
    needs_chromium()
    shot = tmp_path / "report.png"
    page = render(default_run / "report.html", shot, profile=tmp_path / "profile")
    assert page.console == []
    assert page.requests == []
    assert 'data-rendered="yes"' in page.dom  # the question browser's script ran
    assert page.dom.count('class="q"') == 100  # the first page of questions
    assert shot.stat().st_size > 50_000


def test_browser_check_sees_console_errors_and_requests(tmp_path):
    needs_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="http://example.invalid/x.png">'
                   '<script>missing_function()</script>')
    page = render(bad, profile=tmp_path / "profile")
    assert any("missing_function" in line for line in page.console)
    assert page.requests == ["GET http://example.invalid/x.png"]
