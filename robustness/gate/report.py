"""Render a gate result: console table, JSON, pull-request markdown and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from robustness.errors import UserError
from robustness.gate.comparison import Check, GateResult

STATUS_WORD = {"pass": "pass", "warn": "WARN", "fail": "FAIL"}
STATUS_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌"}


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{round(value, 2) + 0.0:+.2f}"  # never "-0.00"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _ci(check: Check) -> str:
    lo, hi = check.ci
    return "n/a" if lo is None or hi is None else f"[{_signed(lo)}, {_signed(hi)}]"


def _side(result: GateResult, side: str) -> str:
    run = result.baseline if side == "baseline" else result.candidate
    what = ", ".join(x for x in (run.model, run.mode) if x)
    return f"{run.path}" + (f" ({what})" if what else "")


def headline(result: GateResult) -> str:
    """``verdict: FAIL (1 failed, 2 warnings, 9 passed)``."""
    return (f"verdict: {result.verdict.upper()} ({result.count('fail')} failed, "
            f"{result.count('warn')} warnings, {result.count('pass')} passed)")


def context_lines(result: GateResult) -> list[str]:
    bench = result.benchmark
    digest = (bench.get("content_hash") or "")[:12]
    return [
        f"baseline:  {_side(result, 'baseline')}",
        f"candidate: {_side(result, 'candidate')}",
        f"benchmark: {bench.get('name') or '?'}" + (f" (sha256 {digest})" if digest else "")
        + f", {result.n_pairs} pairs; conditions: {', '.join(result.conditions)}",
        f"rules:     {result.rules.describe()}",
    ]


def format_table(result: GateResult) -> str:
    """The console report: context, one row per check, the verdict and why."""
    header = ("status", "check", "baseline", "candidate", "delta", "95% CI", "p", "p adj", "margin")
    rows = [header]
    for c in result.checks:
        margin = f"{c.margin:g}" + ("" if c.gating else " (info)")
        rows.append((STATUS_WORD[c.status], c.name, _num(c.baseline), _num(c.candidate),
                     _signed(c.delta), _ci(c), _p(c.p), _p(c.p_adjusted), margin))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = context_lines(result) + [""]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    lines += ["", headline(result)]
    for c in result.checks:
        if c.status != "pass":
            lines.append(f"  {STATUS_WORD[c.status]} {c.name}: {c.reason}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def to_json(result: GateResult) -> str:
    return json.dumps(result.as_dict(), indent=2, allow_nan=False)


def _md_row(c: Check) -> str:
    name = c.name.replace("|", "\\|")
    return (f"| {STATUS_ICON[c.status]} {c.status} | `{name}` | {_num(c.baseline)} | "
            f"{_num(c.candidate)} | {_signed(c.delta)} | {_ci(c)} | {_p(c.p)} | "
            f"{_p(c.p_adjusted)} | {c.margin:g}{'' if c.gating else ' (info)'} |")


def format_markdown(result: GateResult) -> str:
    """A summary fit for a pull-request comment: verdict first, problems, then the tables."""
    icon = STATUS_ICON["fail" if result.verdict == "fail" else
                       "warn" if result.count("warn") else "pass"]
    bench = result.benchmark
    digest = (bench.get("content_hash") or "")[:12]
    mode = result.candidate.mode or result.baseline.mode or "?"
    lines = [
        f"### {icon} Robustness gate: **{result.verdict.upper()}**",
        "",
        f"Candidate `{result.candidate.label}` vs baseline `{result.baseline.label}` on "
        f"`{bench.get('name') or '?'}`" + (f" (sha256 `{digest}`)" if digest else "")
        + f", {result.n_pairs} pairs, mode `{mode}`; "
        f"{result.rules.describe()}.",
        "",
        f"**{result.count('fail')} failed · {result.count('warn')} warnings · "
        f"{result.count('pass')} passed.** Δ = candidate − baseline in percentage points; "
        "`_shift` rows compare how much each run loses under a probe (negative set-accuracy "
        "Δ = the candidate loses more).",
        "",
    ]
    problems = [c for c in result.checks if c.status != "pass"]
    if problems:
        lines += [f"- {STATUS_ICON[c.status]} `{c.name}`: {c.reason}" for c in problems] + [""]
    header = ["| status | check | baseline | candidate | Δ | 95% CI | p | p adj. | margin |",
              "|---|---|---:|---:|---:|---|---:|---:|---:|"]
    main = [c for c in result.checks if c.category is None]
    per_cat = [c for c in result.checks if c.category is not None]
    lines += header + [_md_row(c) for c in main]
    if per_cat:
        lines += ["", f"<details><summary>Per category ({len(per_cat)} checks)</summary>", ""]
        lines += header + [_md_row(c) for c in per_cat] + ["", "</details>"]
    if result.notes:
        lines += [""] + [f"_Note: {n}_" for n in result.notes]
    return "\n".join(lines) + "\n"


def to_junit(result: GateResult) -> ET.ElementTree:
    """One ``testcase`` per check: failures as ``<failure>``, warnings in ``<system-out>``."""
    n, failures = len(result.checks), result.count("fail")
    suites = ET.Element("testsuites", name="robustness gate", tests=str(n),
                        failures=str(failures), errors="0", time="0")
    suite = ET.SubElement(suites, "testsuite", name="robustness-gate", tests=str(n),
                          failures=str(failures), errors="0", skipped="0", time="0")
    props = ET.SubElement(suite, "properties")
    for key, value in (("verdict", result.verdict), ("baseline", str(result.baseline.path)),
                       ("candidate", str(result.candidate.path)),
                       ("benchmark", str(result.benchmark.get("name"))),
                       ("content_hash", str(result.benchmark.get("content_hash"))),
                       ("rules", result.rules.describe()), ("warnings", str(result.count("warn")))):
        ET.SubElement(props, "property", name=key, value=value)
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"robustness_gate.{c.condition}",
                             name=c.name, time="0")
        u = f" {c.unit}" if c.unit else ""
        detail = (f"{c.metric} ({c.kind}{', ' + c.category if c.category else ''}): baseline "
                  f"{_num(c.baseline)}, candidate {_num(c.candidate)}, "
                  f"delta {_signed(c.delta)}{u}, "
                  f"95% CI {_ci(c)}, p {_p(c.p)}, p adj {_p(c.p_adjusted)}, margin {c.margin:g}{u}"
                  f"{'' if c.gating else ' (reported only)'}, {c.n_pairs} pairs")
        if c.status == "fail":
            failure = ET.SubElement(case, "failure", message=f"{c.name}: {c.reason}",
                                    type="RobustnessRegression")
            failure.text = detail
        out = ET.SubElement(case, "system-out")
        prefix = "WARNING" if c.status == "warn" else c.status
        out.text = f"{prefix}: {c.reason}\n{detail}"
    ET.indent(suites)
    return ET.ElementTree(suites)


def _write(path: str | Path, text: str | None = None, tree: ET.ElementTree | None = None) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if tree is not None:
            tree.write(path, encoding="utf-8", xml_declaration=True)
        else:
            path.write_text(text or "", encoding="utf-8")
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None


def write_markdown(result: GateResult, path: str | Path) -> None:
    _write(path, text=format_markdown(result))


def write_junit(result: GateResult, path: str | Path) -> None:
    _write(path, tree=to_junit(result))
