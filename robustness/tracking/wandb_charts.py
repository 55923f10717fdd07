"""W&B panels that chart themselves: curve history rows on their own x axes (``define_metric``)
and ``wandb.plot`` charts — severity/budget curves with their intervals, shift bars, position
bias and the category × condition heatmap — all from ``summary.json``'s content."""

from __future__ import annotations

from typing import Any, Mapping

from robustness.report import figures
from robustness.report.svg import heatmap


def curve_rows(summary: Mapping[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """History rows per graded probe: its knob, then each metric with its interval bounds."""
    rows: dict[tuple[str, str], dict[float, dict[str, Any]]] = {}
    for metric in figures.CURVE_METRICS:
        for curve in figures.curves(summary, metric):
            prefix = f"curve/{curve.probe}"
            for p in curve.points:
                row = rows.setdefault((curve.probe, curve.param), {}).setdefault(
                    p.x, {f"{prefix}/{curve.param}": p.x})
                row[f"{prefix}/{metric}"] = p.y
                if p.lo is not None and p.hi is not None:
                    row[f"{prefix}/{metric}_low"], row[f"{prefix}/{metric}_high"] = p.lo, p.hi
    for curve in figures.attack_curves(summary):
        prefix = f"curve/{curve.probe}"
        for p in curve.points:
            rows.setdefault((curve.probe, curve.param), {}).setdefault(
                p.x, {f"{prefix}/{curve.param}": p.x})[f"{prefix}/attack_success_rate"] = p.y
    return {key: [by_x[x] for x in sorted(by_x)] for key, by_x in rows.items()}


def log_curve_history(run: Any, summary: Mapping[str, Any]) -> None:
    """One history row per point of each curve, plotted against the probe's knob natively."""
    for (probe, param), rows in curve_rows(summary).items():
        axis = f"curve/{probe}/{param}"
        run.define_metric(axis, hidden=True)
        run.define_metric(f"curve/{probe}/*", step_metric=axis)
        for row in rows:
            run.log(row)


def log_charts(run: Any, summary: Mapping[str, Any]) -> None:
    """``wandb.plot`` charts and the heatmap, under ``charts/``."""
    import wandb

    payload: dict[str, Any] = {}
    for curve in figures.curves(summary, "set_accuracy"):
        xs = [p.x for p in curve.points]
        ys = [[p.y for p in curve.points]]
        keys = ["set accuracy"]
        if all(p.lo is not None for p in curve.points):
            ys += [[p.lo for p in curve.points], [p.hi for p in curve.points]]
            keys += ["95% CI low", "95% CI high"]
        payload[f"charts/curve_{curve.probe}"] = wandb.plot.line_series(
            xs=xs, ys=ys, keys=keys, title=f"{curve.probe}: set accuracy vs {curve.param}",
            xname=curve.param)
    for curve in figures.attack_curves(summary):
        payload[f"charts/attack_{curve.probe}"] = wandb.plot.line_series(
            xs=[p.x for p in curve.points], ys=[[p.y for p in curve.points]],
            keys=["attack success rate"], title=f"{curve.probe}: attack success vs {curve.param}",
            xname=curve.param)
    bars = figures.shift_bars(summary)
    if bars:
        table = wandb.Table(columns=["condition", "delta_set_accuracy", "ci_low", "ci_high"],
                            data=[[b.label, b.value, b.lo, b.hi] for b in bars])
        payload["charts/shift_set_accuracy"] = wandb.plot.bar(
            table, "condition", "delta_set_accuracy", title="Δ set accuracy vs clean (points)")
        payload["charts/shift_set_accuracy_ci"] = table
    bias = figures.position_bias(summary)
    if bias:
        table = wandb.Table(columns=["order", "first_position_share"],
                            data=[[b.label, b.value] for b in bias])
        payload["charts/position_bias"] = wandb.plot.bar(
            table, "order", "first_position_share", title="answers on the first shown option (%)")
    rows, cols, values = figures.category_matrix(summary)
    if rows:
        payload["charts/category_heatmap_table"] = wandb.Table(
            columns=["category", "condition", "set_accuracy"],
            data=[[r, c, values[i][j]] for i, r in enumerate(rows) for j, c in enumerate(cols)])
        payload["charts/category_heatmap"] = wandb.Html(
            heatmap(rows, cols, values, title="set accuracy: category × condition"),
            inject=False)
    if payload:
        run.log(payload)
