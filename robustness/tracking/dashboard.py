"""A W&B workspace for comparing models' robustness, built with W&B's own workspace API
(``wandb-workspaces``): runs grouped by model, curves per graded probe on their own axes, shift
bars, position bias, per-category heatmaps and attack curves, from the keys the tracker logs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from robustness.errors import UserError
from robustness.report import figures

EXTRA = "pip install 'mediconfusion-robustness[dashboard]'"


@dataclass
class Layout:
    """What the panels are built for: graded probes (name → knob), attacks, and conditions."""

    curves: dict[str, str] = field(default_factory=dict)
    attacks: dict[str, str] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)
    option_swap: list[str] = field(default_factory=list)


def layout_from_summaries(summaries: Sequence[dict[str, Any]]) -> Layout:
    """The panels the given runs need (every probe condition they logged)."""
    out = Layout()
    for summary in summaries:
        for curve in figures.curves(summary):
            out.curves.setdefault(curve.probe, curve.param)
        for curve in figures.attack_curves(summary):
            out.attacks.setdefault(curve.probe, curve.param)
        for name, cond in summary.get("conditions", {}).items():
            if name not in out.conditions:
                out.conditions.append(name)
            if "position_bias_clean" in (cond.get("probe_metrics") or {}) and \
                    name not in out.option_swap:
                out.option_swap.append(name)
    return out


def default_layout() -> Layout:
    """Panels for the default experiment's probe suite (``conf/config.yaml``)."""
    from robustness.configs import config_dir

    import yaml

    defaults = yaml.safe_load((config_dir() / "config.yaml").read_text(encoding="utf-8"))
    probes = next(d["probe"] for d in defaults["defaults"] if isinstance(d, dict) and "probe" in d)
    out = Layout(conditions=["clean"])
    for probe in probes:
        cfg = yaml.safe_load((config_dir() / "probe" / f"{probe}.yaml").read_text("utf-8")) or {}
        body = cfg.get(probe, cfg)
        if "severities" in body:
            out.curves[probe] = "severity"
            out.conditions += [f"{probe}@{s}" for s in body["severities"]]
        elif "eps" in body:
            out.curves[probe] = "eps"
            out.attacks[probe] = "eps"
            out.conditions += [f"{probe}@{e}" for e in body["eps"]]
        else:
            out.conditions.append(probe)
        if probe == "option_swap":
            out.option_swap.append(probe)
    return out


def build_workspace(entity: str, project: str, name: str, layout: Layout) -> Any:
    """The workspace object (nothing is sent until ``save()``)."""
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError:
        raise UserError(f"robustness dashboard needs wandb-workspaces: {EXTRA}") from None

    by_model = wr.Config("choices.model")
    probes = [c for c in layout.conditions if c != "clean"]
    sections = [ws.Section(name="Overview", is_open=True, panels=[
        wr.BarPlot(title="clean set accuracy by model", metrics=["clean/set_accuracy"],
                   groupby=by_model),
        wr.BarPlot(title="clean confusion by model", metrics=["clean/confusion"],
                   groupby=by_model),
        wr.BarPlot(title="set accuracy per condition",
                   metrics=[f"{c}/set_accuracy" for c in layout.conditions]),
    ])]
    curve_panels = []
    for probe, param in layout.curves.items():
        for metric in ("set_accuracy", "confusion"):
            curve_panels.append(wr.LinePlot(
                title=f"{probe}: {metric.replace('_', ' ')} vs {param}",
                x=f"curve/{probe}/{param}", y=[f"curve/{probe}/{metric}"],
                title_x=param, title_y=f"{metric} (%)", range_y=(0, 100)))
    if curve_panels:
        sections.append(ws.Section(name="Robustness curves", is_open=True, panels=curve_panels))
    if probes:
        sections.append(ws.Section(name="Shifts", is_open=True, panels=[
            wr.BarPlot(title=f"Δ {metric.replace('_', ' ')} vs clean (points)",
                       metrics=[f"{c}/shift/{metric}" for c in probes])
            for metric in ("set_accuracy", "confusion")]))
    if layout.option_swap:
        sections.append(ws.Section(name="Position bias", is_open=True, panels=[
            wr.BarPlot(title=f"{c}: answers on the first shown option (%)",
                       metrics=[f"{c}/probe/position_bias_clean",
                                f"{c}/probe/position_bias_swapped"])
            for c in layout.option_swap] + [
            wr.BarPlot(title=f"{c}: order consistency (%)",
                       metrics=[f"{c}/probe/order_consistency"], groupby=by_model)
            for c in layout.option_swap]))
    sections.append(ws.Section(name="Per category", is_open=True, panels=[
        wr.WeavePanelSummaryTable(table_name="charts/category_heatmap_table"),
        wr.MediaBrowser(media_keys=["charts/category_heatmap"])]))
    if layout.attacks:
        sections.append(ws.Section(name="Attacks", is_open=True, panels=[
            wr.LinePlot(title=f"{probe}: attack success vs {param}",
                        x=f"curve/{probe}/{param}", y=[f"curve/{probe}/attack_success_rate"],
                        title_x=param, title_y="attack success (%)", range_y=(0, 100))
            for probe, param in layout.attacks.items()]))
    return ws.Workspace(entity=entity, project=project, name=name, sections=sections,
                        runset_settings=ws.RunsetSettings(groupby=[ws.Config("choices.model")]))


def describe(workspace: Any) -> dict[str, Any]:
    """The workspace's sections and panels as plain JSON (``--dry-run``): each panel's type,
    title and the query W&B will run (view type, metrics, x axis, grouping), taken from the
    same wire model ``save()`` sends."""
    def panel(p: Any) -> dict[str, Any]:
        wire = p._to_model().model_dump(mode="json", by_alias=True, exclude_none=True)
        return {"type": type(p).__name__, "view": wire.get("viewType"),
                "query": wire.get("config")}

    return {"entity": workspace.entity, "project": workspace.project, "name": workspace.name,
            "group_runs_by": [g.name for g in workspace.runset_settings.groupby],
            "sections": [{"name": s.name, "panels": [panel(p) for p in s.panels]}
                         for s in workspace.sections]}


def logged_in() -> bool:
    """Whether W&B credentials exist (``WANDB_API_KEY`` or a ``wandb login`` netrc entry),
    checked without any request."""
    import netrc
    import os
    from urllib.parse import urlsplit

    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return bool(netrc.netrc(os.environ.get("NETRC")).authenticators(host or ""))
    except (OSError, netrc.NetrcParseError):
        return False


def summaries_from(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    from robustness.report.compare import find_runs

    return [run.summary for run in find_runs(paths)]


def dry_run_json(workspace: Any) -> str:
    return json.dumps(describe(workspace), indent=2)
