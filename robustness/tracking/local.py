"""The local report: ``report.md`` and example images in the run folder, and the console table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from robustness.report.figures import category_matrix
from robustness.run_outputs import safe_name
from robustness.tracking.base import ExampleImage, RunInfo, Tracker

log = logging.getLogger(__name__)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value: Any) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.1e}"


def _ci(ci: Any) -> str:
    if not ci or any(v is None or v != v for v in ci):
        return "–"
    return f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"


CONDITION_COLUMNS = ("condition", "set acc", "Δ set", "95% CI Δ", "McNemar p", "indiv acc",
                     "Δ indiv", "confusion", "Δ conf", "invalid", "flip %")


def condition_rows(summary: dict[str, Any]) -> list[list[str]]:
    """One row per condition: metrics and (for probes) shifts against clean, as text."""
    rows = []
    for name, cond in summary.get("conditions", {}).items():
        m, s = cond["overall"], cond.get("shift") or {}
        rows.append([name, _fmt(m["set_accuracy"]), _signed(s.get("set_accuracy")),
                     _ci(s.get("set_accuracy_ci")), _p(s.get("mcnemar_p")),
                     _fmt(m["individual_accuracy"]), _signed(s.get("individual_accuracy")),
                     _fmt(m["confusion"]), _signed(s.get("confusion")), _fmt(m["invalid_rate"]),
                     _fmt(s.get("flip_rate"))])
    return rows


def format_console_table(summary: dict[str, Any]) -> str:
    """A fixed-width table of every condition, for the terminal."""
    rows = [list(CONDITION_COLUMNS)] + condition_rows(summary)
    widths = [max(len(r[i]) for r in rows) for i in range(len(CONDITION_COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = (f"{summary.get('model')} · {summary.get('mode')} · {summary.get('dataset')} "
            f"({summary.get('n_pairs')} pairs) — percentages; Δ = probe − clean, points")
    extras = [f"{name}: {probe_metrics_line(cond['probe_metrics'])}"
              for name, cond in summary.get("conditions", {}).items() if cond.get("probe_metrics")]
    return "\n".join([head, *lines, *extras])


def probe_metrics_line(metrics: dict[str, Any]) -> str:
    """Scalar probe metrics as ``key value`` pairs (nested ones are in summary.json)."""
    return ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool))


def _report_value(value: Any) -> str:
    """A probe metric for report.md; a per-pair mapping (``min_eps_per_pair``) is shown as how
    many pairs take each value (the full mapping is in summary.json)."""
    if isinstance(value, dict) and len(value) > 8 and all(
            not isinstance(v, (dict, list)) for v in value.values()):
        counts: dict[str, int] = {}
        for v in value.values():
            counts[_fmt(v)] = counts.get(_fmt(v), 0) + 1
        return "{" + ", ".join(f"{k}: {n} pairs" for k, n in counts.items()) + "}"
    return _fmt(value) if not isinstance(value, (dict, list)) else str(value)


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def render_report(summary: dict[str, Any], examples: dict[str, str]) -> str:
    """``report.md``: provenance, the condition table, per-category tables, probe metrics."""
    bench = summary.get("benchmark", {})
    cache = summary.get("cache", {})
    lines = [
        f"# Robustness run: {summary.get('model')} · {summary.get('mode')} · {summary.get('dataset')}",
        "",
        f"- Benchmark: `{bench.get('name')}` — {summary.get('n_pairs')} pairs, "
        f"sha256 `{str(bench.get('content_hash', ''))[:12]}`, `{bench.get('path')}`",
        f"- Model: `{summary.get('model_id')}` · mode `{summary.get('mode')}` · prompt "
        f"`{summary.get('prompt')}` · seed {summary.get('seed')}",
        f"- Started {summary.get('started_at')} · took {_fmt(summary.get('elapsed_s'), 1)} s · "
        f"answers from cache {cache.get('hits', 0)} / asked the model {cache.get('misses', 0)}",
    ]
    failures = summary.get("failures") or {}
    if failures:
        lines.append("- Failed answers (counted invalid): "
                     + ", ".join(f"{k} {v}" for k, v in failures.items()))
    usage = summary.get("usage") or {}
    if usage.get("input_tokens") or usage.get("output_tokens"):
        cost = usage.get("estimated_cost_usd")
        spent = [u.get("this_run", {}) for k, u in usage.items() if isinstance(u, dict)]
        spent_cost = [s_.get("estimated_cost_usd") for s_ in spent if "estimated_cost_usd" in s_]
        line = (f"- Tokens of these answers: {usage.get('input_tokens', 0)} in / "
                f"{usage.get('output_tokens', 0)} out")
        if cost is not None:
            line += f" · estimated cost ${cost:.4f}"
        if spent:
            line += (f" · asked in this run: {sum(s_.get('input_tokens', 0) for s_ in spent)} in / "
                     f"{sum(s_.get('output_tokens', 0) for s_ in spent)} out")
            if spent_cost:
                line += f" (${sum(spent_cost):.4f})"
        lines.append(line)
    lines += ["", "## Conditions", "",
              "Percentages. Δ = probe − clean in points on the same pairs; CI = paired bootstrap "
              "95% interval of Δ set accuracy; p = exact McNemar on pair correctness; flip = "
              "share of image answers that changed.", "",
              _md_table(CONDITION_COLUMNS, condition_rows(summary)), ""]
    conditions = summary.get("conditions", {})
    for metric, title in (("set_accuracy", "Set accuracy"), ("confusion", "Confusion")):
        cats, names, values = category_matrix(summary, metric)
        if cats:
            rows = [[cat] + [_fmt(v) for v in row] for cat, row in zip(cats, values)]
            lines += [f"## {title} per category", "", _md_table(["category", *names], rows), ""]
    probe_rows = [(name, c["probe_metrics"]) for name, c in conditions.items()
                  if c.get("probe_metrics")]
    if probe_rows:
        lines += ["## Probe metrics", ""]
        for name, metrics in probe_rows:
            lines.append(f"- **{name}**: " + ", ".join(
                f"{k} = {_report_value(v)}" for k, v in metrics.items()))
        lines.append("")
    if examples:
        lines += ["## Example pairs", ""]
        for name, rel in examples.items():
            if rel.startswith("same pixels as "):
                lines += [f"**{name}**: {rel} (a text-only probe), not drawn again", ""]
            else:
                lines += [f"**{name}**", "", f"![{name}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


class LocalReport(Tracker):
    """Writes ``report.md``, ``report.html`` and ``examples/<condition>.png`` into the run folder."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.examples: dict[str, str] = {}

    def start(self, run: RunInfo) -> None:
        self.run_dir = Path(run.run_dir)

    def log_examples(self, condition: str, examples: Sequence[ExampleImage],
                     same_pixels_as: str | None = None) -> None:
        if self.run_dir is None:
            return
        if same_pixels_as is not None:
            self.examples[condition] = f"same pixels as {same_pixels_as}"
            return
        if not examples:
            return
        from PIL import Image

        width = max(e.pixels.shape[1] for e in examples)
        gap = np.full((8, width, 3), 255, dtype=np.uint8)
        stacked = []
        for e in examples:
            px = e.pixels if e.pixels.ndim == 3 else np.stack([e.pixels] * 3, axis=-1)
            pad = np.full((px.shape[0], width - px.shape[1], 3), 255, dtype=np.uint8)
            stacked += [np.concatenate([px, pad], axis=1), gap]
        folder = self.run_dir / "examples"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(stacked[:-1], axis=0)).save(
            folder / f"{safe_name(condition)}.png")
        self.examples[condition] = f"examples/{safe_name(condition)}.png"

    def log_summary(self, summary: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        from robustness.report.run_page import write_run_report

        (self.run_dir / "report.md").write_text(render_report(summary, self.examples),
                                                encoding="utf-8")
        try:
            write_run_report(self.run_dir)
        except Exception as err:  # noqa: BLE001 - the results are written; a page must not fail the run
            log.warning("report.html not written (%s: %s); rebuild it with "
                        "robustness.report.write_run_report", type(err).__name__, err)

    def finish(self, status: str = "ok") -> None:
        pass
