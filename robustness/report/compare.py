"""``robustness report RUN_OR_SWEEP... --out compare.html``: models side by side on one benchmark
— every condition's metrics with intervals, robustness curves overlaid, and the gate's paired
verdicts of each run against a baseline — as HTML and its markdown twin."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Sequence

from robustness.errors import UserError
from robustness.report import figures
from robustness.report.page import fmt, fmt_ci, page, table
from robustness.report.svg import Series, bar_chart, line_chart


@dataclass
class Run:
    """One run folder and its summary, with the label it is shown under."""

    path: Path
    summary: dict[str, Any]
    label: str = ""

    @property
    def benchmark_hash(self) -> str:
        return str((self.summary.get("benchmark") or {}).get("content_hash") or "")


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable summary.json ({type(err).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("conditions"), dict):
        raise UserError(f"{path}: field 'conditions': missing; not a robustness summary.json")
    return data


def find_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Run folders from run folders, ``summary.json`` files or sweep folders (every job)."""
    runs: list[Run] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name == "summary.json":
            found = [path]
        elif (path / "summary.json").is_file():
            found = [path / "summary.json"]
        elif path.is_dir():
            found = sorted(path.glob("*/summary.json"), key=_job_order)
        else:
            raise UserError(f"{path}: no such run folder, sweep folder or summary.json")
        if not found:
            raise UserError(f"{path}: no summary.json in it or in its job folders")
        runs += [Run(f.parent, _read_summary(f)) for f in found]
    _label(runs)
    return runs


def _job_order(path: Path) -> tuple[int, str]:
    head = path.parent.name.split("_", 1)[0]
    return (int(head) if head.isdigit() else 1 << 30, path.parent.name)


def _label(runs: list[Run]) -> None:
    """``model · mode``, with the folder name added where that is ambiguous."""
    base = [f"{r.summary.get('model')} · {r.summary.get('mode')}" for r in runs]
    for run, label in zip(runs, base):
        run.label = label if base.count(label) == 1 else f"{label} ({run.path.name})"


def same_benchmark(runs: Sequence[Run]) -> None:
    """Refuse runs on different benchmarks (content hashes) in one line."""
    first = runs[0]
    for run in runs[1:]:
        if run.benchmark_hash != first.benchmark_hash:
            raise UserError(
                f"{run.path}: benchmark.content_hash {run.benchmark_hash[:12] or 'missing'} differs "
                f"from {first.path}'s {first.benchmark_hash[:12] or 'missing'}; compare runs on "
                "the same benchmark")


def gate_verdicts(baseline: Run, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The gate's paired comparison of each other run against ``baseline``."""
    from robustness.gate import compare

    out = []
    for run in runs:
        if run.path == baseline.path:
            continue
        try:
            result = compare(baseline.path, run.path)
        except UserError as err:
            out.append({"run": run.label, "verdict": "not comparable", "reason": str(err),
                        "checks": []})
            continue
        out.append({"run": run.label, "verdict": result.verdict,
                    "counts": {s: result.count(s) for s in ("pass", "warn", "fail")},
                    "checks": [c.as_dict() for c in result.checks if c.category is None]})
    return out


def _conditions(runs: Sequence[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names += [n for n in run.summary["conditions"] if n not in names]
    return names


def metric_rows(runs: Sequence[Run]) -> list[list[Any]]:
    """Per condition and run: set accuracy, confusion (with intervals) and Δ set (with CI)."""
    rows = []
    for name in _conditions(runs):
        for run in runs:
            cond = run.summary["conditions"].get(name)
            if cond is None:
                continue
            m, ci, s = cond["overall"], cond.get("ci") or {}, cond.get("shift") or {}
            rows.append([name, run.label, m.get("set_accuracy"), ci.get("set_accuracy"),
                         m.get("confusion"), ci.get("confusion"), s.get("set_accuracy"),
                         s.get("set_accuracy_ci"), m.get("individual_accuracy"),
                         m.get("invalid_rate")])
    return rows


METRIC_COLUMNS = ["condition", "run", "set acc", "95% CI", "confusion", "95% CI", "Δ set",
                  "95% CI Δ", "indiv acc", "invalid"]


def _cells(row: list[Any]) -> list[str]:
    return [escape(row[0]), escape(row[1]), fmt(row[2]), fmt_ci(row[3]), fmt(row[4]),
            fmt_ci(row[5]), fmt(row[6]), fmt_ci(row[7], signed=True), fmt(row[8]), fmt(row[9])]


def overlaid_curves(runs: Sequence[Run], metric: str) -> list[str]:
    """One chart per graded probe with a line (and band) per run."""
    by_probe: dict[tuple[str, str], list[Series]] = {}
    for run in runs:
        for curve in figures.curves(run.summary, metric):
            by_probe.setdefault((curve.probe, curve.param), []).append(
                Series(run.label, [(p.x, p.y, p.lo, p.hi) for p in curve.points]))
    return [line_chart(series, title=f"{probe}: {metric.replace('_', ' ')}", x_label=param,
                       y_label=f"{metric} (%)") for (probe, param), series in by_probe.items()]


def _verdict_html(verdicts: list[dict[str, Any]], baseline: Run) -> str:
    if not verdicts:
        return ""
    parts = [f"<h2>Gate: each run against {escape(baseline.label)}</h2>"]
    for v in verdicts:
        cls = "ok" if v["verdict"] == "pass" else "bad"
        parts.append(f"<h3 class=\"{cls}\">{escape(v['run'])}: {escape(v['verdict'])}</h3>")
        if v.get("reason"):
            parts.append(f"<p class=\"muted\">{escape(v['reason'])}</p>")
        rows = [[escape(c["name"]), fmt(c["baseline"]), fmt(c["candidate"]), fmt(c["delta"]),
                 fmt_ci(c["ci"], signed=True), fmt(c["p_adjusted"], 4), escape(c["status"])]
                for c in v["checks"]]
        if rows:
            parts.append(table(["check", "baseline", "candidate", "Δ", "95% CI", "p (adj.)",
                                "status"], rows))
    return "".join(parts)


def render_comparison(runs: Sequence[Run], baseline: Run,
                      verdicts: list[dict[str, Any]]) -> str:
    """The comparison page."""
    bench = runs[0].summary.get("benchmark") or {}
    listing = table(["run", "model", "mode", "prompt", "folder"], [
        [escape(r.label) + (" (baseline)" if r.path == baseline.path else ""),
         escape(str(r.summary.get("model_id"))), escape(str(r.summary.get("mode"))),
         escape(str(r.summary.get("prompt"))), escape(r.path.name)] for r in runs])
    curves = overlaid_curves(runs, "set_accuracy") + overlaid_curves(runs, "confusion")
    shifts = [bar_chart([(b.label, b.value, b.lo, b.hi) for b in figures.shift_bars(r.summary)],
                        title=f"{r.label}: Δ set accuracy", x_label="points vs its clean, 95% CI")
              for r in runs if figures.shift_bars(r.summary)]
    bias = [bar_chart([(b.label, b.value, None, None) for b in figures.position_bias(r.summary)],
                      title=f"{r.label}: position bias", x_label="% on the first shown option",
                      centre=50.0) for r in runs if figures.position_bias(r.summary)]
    grid = lambda charts: "<div class=\"grid\">" + "".join(  # noqa: E731
        f'<div class="card">{c}</div>' for c in charts) + "</div>"
    body = [f"<h1>Comparison on {escape(str(bench.get('name')))}</h1>",
            f"<p>{len(runs)} runs · {bench.get('n_pairs')} pairs · benchmark sha256 <code>"
            f"{escape(runs[0].benchmark_hash[:12])}</code>. Percentages; intervals are each "
            "run's bootstrap 95% intervals; the gate compares runs pair by pair.</p>", listing,
            "<h2>Conditions</h2>", table(METRIC_COLUMNS, [_cells(r) for r in metric_rows(runs)])]
    if curves:
        body += ["<h2>Robustness curves</h2>", grid(curves)]
    if shifts:
        body += ["<h2>Shifts</h2>", grid(shifts)]
    if bias:
        body += ["<h2>Option-swap position bias</h2>", grid(bias)]
    body.append(_verdict_html(verdicts, baseline))
    return page(f"Comparison: {', '.join(r.label for r in runs)}", "".join(body))


def render_markdown(runs: Sequence[Run], baseline: Run, verdicts: list[dict[str, Any]]) -> str:
    """The comparison as markdown (tables only)."""
    from robustness.tracking.local import _md_table

    rows = [[r[0], r[1], fmt(r[2]), fmt_ci(r[3]), fmt(r[4]), fmt_ci(r[5]), fmt(r[6]),
             fmt_ci(r[7], signed=True), fmt(r[8]), fmt(r[9])] for r in metric_rows(runs)]
    text = [f"# Comparison on {(runs[0].summary.get('benchmark') or {}).get('name')}", "",
            f"Baseline: {baseline.label}. Percentages; 95% bootstrap intervals.", "",
            _md_table(METRIC_COLUMNS, rows), ""]
    for v in verdicts:
        text += [f"## Gate: {v['run']} vs {baseline.label}: {v['verdict']}", ""]
        if v.get("reason"):
            text += [v["reason"], ""]
        if v["checks"]:
            text += [_md_table(["check", "baseline", "candidate", "Δ", "95% CI", "p (adj.)",
                                "status"],
                               [[c["name"], fmt(c["baseline"]), fmt(c["candidate"]),
                                 fmt(c["delta"]), fmt_ci(c["ci"], signed=True),
                                 fmt(c["p_adjusted"], 4), c["status"]] for c in v["checks"]]), ""]
    return "\n".join(text).rstrip() + "\n"


def write_comparison(paths: Sequence[str | Path], out: Path,
                     baseline: str | Path | None = None, gate: bool = True,
                     markdown: bool = True) -> list[Run]:
    """Write ``out`` (HTML) and, with ``markdown``, its twin (``out`` with ``.md``); returns the
    runs."""
    from robustness.run_outputs import atomic_write

    runs = find_runs(paths)
    if baseline is not None:
        base = find_runs([baseline])[0]
        runs = [base] + [r for r in runs if r.path.resolve() != base.path.resolve()]
        _label(runs)
    same_benchmark(runs)
    base = runs[0]
    verdicts = gate_verdicts(base, runs) if gate and len(runs) > 1 else []
    atomic_write(out, render_comparison(runs, base, verdicts))
    if markdown:
        atomic_write(out.with_suffix(".md"), render_markdown(runs, base, verdicts))
    return runs
