"""pytest plugin (entry point ``robustness_gate``): gate a model repository's tests on a baseline.

Loaded by every pytest session in an environment where the toolkit is installed, so it imports
nothing heavy at start-up and does nothing unless a test asks for the ``robustness_gate``
fixture::

    def test_no_robustness_regression(robustness_gate):
        robustness_gate("runs/candidate", baseline="baselines/v1")  # fails the test on a regression

Paths may also come from the command line (``--gate-baseline``, ``--gate-candidate``,
``--gate-config``, ``--gate-annotations``) or the ini file (``gate_baseline`` ...; relative to
the rootdir). Without a baseline the test is skipped. Warnings become :class:`GateWarning`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from robustness.gate.comparison import GateResult

SETTINGS = ("baseline", "candidate", "config", "annotations")
HELP = {
    "baseline": "baseline run directory (or results file) the robustness_gate fixture uses",
    "candidate": "candidate run directory (or results file) for the robustness_gate fixture",
    "config": "gate rules: a YAML file or a preset name (default: conf/gate/default.yaml)",
    "annotations": "benchmark dataset.json (needed for official results files)",
}


class GateWarning(UserWarning):
    """A check worse than its margin but not a significant regression (does not fail the test)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustness-gate",
                            "robustness regression gate (robustness_gate fixture)")
    for name in SETTINGS:
        group.addoption(f"--gate-{name}", dest=f"gate_{name}", metavar="PATH", default=None,
                        help=HELP[name])
        parser.addini(f"gate_{name}", f"{HELP[name]} (relative to the rootdir)", default=None)


def pytest_report_header(config: pytest.Config) -> str | None:
    baseline = _setting(config, "baseline")
    return f"robustness gate: baseline {baseline}" if baseline else None


def _setting(config: pytest.Config, name: str) -> str | None:
    """Command line first (relative to the invocation dir), then the ini (relative to rootdir)."""
    value = config.getoption(f"gate_{name}", default=None)
    if value:
        return str(Path(config.invocation_params.dir, value))
    value = config.getini(f"gate_{name}")
    if value:
        return str(Path(config.rootpath, value))
    return None


def run_gate(config: pytest.Config, candidate: str | Path | None = None,
             baseline: str | Path | None = None, *, rules: str | Path | None = None,
             annotations: str | Path | None = None, markdown: str | Path | None = None,
             junit: str | Path | None = None) -> "GateResult":
    """Compare ``candidate`` with ``baseline``; fail the test on a regression or mismatch."""
    from robustness.errors import UserError
    from robustness.gate.comparison import compare_runs
    from robustness.gate.report import format_table, headline, write_junit, write_markdown
    from robustness.gate.rules import load_rules

    baseline = baseline or _setting(config, "baseline")
    candidate = candidate or _setting(config, "candidate")
    if not baseline:
        pytest.skip("robustness gate: no baseline "
                    "(pass --gate-baseline PATH or set gate_baseline)")
    if not candidate:
        pytest.skip("robustness gate: no candidate "
                    "(pass --gate-candidate PATH or set gate_candidate)")
    try:
        result = compare_runs(baseline, candidate,
                              rules=load_rules(rules or _setting(config, "config")),
                              annotations=annotations or _setting(config, "annotations"))
        if markdown:
            write_markdown(result, markdown)
        if junit:
            write_junit(result, junit)
    except UserError as err:
        pytest.fail(f"robustness gate: {err}", pytrace=False)
    for check in result.checks:
        if check.status == "warn":
            warnings.warn(GateWarning(f"robustness gate: {check.name}: {check.reason}"),
                          stacklevel=3)
    if result.verdict == "fail":
        pytest.fail(f"robustness gate: {headline(result)}\n{format_table(result)}", pytrace=False)
    return result


@pytest.fixture
def robustness_gate(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A function ``gate(candidate=None, baseline=None, *, rules=None, annotations=None,
    markdown=None, junit=None) -> GateResult`` that fails the test when the candidate regresses.
    Unset paths fall back to ``--gate-*`` options and ``gate_*`` ini values."""

    def gate(candidate: str | Path | None = None, baseline: str | Path | None = None,
             **kwargs: Any) -> "GateResult":
        return run_gate(request.config, candidate, baseline, **kwargs)

    return gate
