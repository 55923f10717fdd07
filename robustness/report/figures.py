"""The numbers behind every chart, taken from a run's ``summary.json``: one place for the W&B
tracker, ``report.html``, ``robustness report`` and the dashboard to agree on what is drawn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

CURVE_PARAMS = ("severity", "eps", "weight")  # the numeric knob of a graded probe, in this order
CURVE_METRICS = ("set_accuracy", "individual_accuracy", "confusion")


@dataclass(frozen=True)
class Point:
    """One condition on a curve: its knob value, metric and 95% interval (``None`` when
    unknown)."""

    x: float
    y: float
    lo: float | None
    hi: float | None
    condition: str


@dataclass(frozen=True)
class Curve:
    """A graded probe's metric against its knob (``severity``, ``eps`` or ``weight``), clean at 0."""

    probe: str
    param: str
    metric: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Bar:
    """One condition's shift against clean (points) with its paired 95% interval."""

    label: str
    value: float
    lo: float | None
    hi: float | None


def curve_param(params: Mapping[str, Any]) -> str | None:
    """The knob a condition's parameters put it on a curve by, if any."""
    for key in CURVE_PARAMS:
        value = params.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return key
    return None


def _interval(cond: Mapping[str, Any], metric: str) -> tuple[float | None, float | None]:
    ci = (cond.get("ci") or {}).get(metric)
    return (ci[0], ci[1]) if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)


def curves(summary: Mapping[str, Any], metric: str = "set_accuracy") -> list[Curve]:
    """Every graded probe's curve of ``metric``, with the clean condition at knob value 0 unless
    the probe ran a level 0 itself."""
    conditions = summary.get("conditions", {})
    clean = conditions.get("clean")
    grouped: dict[tuple[str, str], list[Point]] = {}
    for name, cond in conditions.items():
        probe = cond.get("probe") or {}
        param = curve_param(probe.get("params") or {})
        if param is None or name == "clean" or cond["overall"].get(metric) is None:
            continue
        lo, hi = _interval(cond, metric)
        grouped.setdefault((probe.get("name") or name, param), []).append(
            Point(float(probe["params"][param]), cond["overall"][metric], lo, hi, name))
    out = []
    for (probe, param), points in grouped.items():
        if clean is not None and clean["overall"].get(metric) is not None and \
                all(p.x != 0 for p in points):  # a level 0 is its own point
            lo, hi = _interval(clean, metric)
            points.append(Point(0.0, clean["overall"][metric], lo, hi, "clean"))
        out.append(Curve(probe, param, metric, tuple(sorted(points, key=lambda p: p.x))))
    return out


def shift_bars(summary: Mapping[str, Any], metric: str = "set_accuracy") -> list[Bar]:
    """Each probe condition's shift of ``metric`` against clean, with its interval."""
    bars = []
    for name, cond in summary.get("conditions", {}).items():
        shift = cond.get("shift") or {}
        if shift.get(metric) is None:
            continue
        ci = shift.get(f"{metric}_ci") or [None, None]
        bars.append(Bar(name, shift[metric], ci[0], ci[1]))
    return bars


def category_matrix(summary: Mapping[str, Any], metric: str = "set_accuracy",
                    ) -> tuple[list[str], list[str], list[list[float | None]]]:
    """Categories × conditions of ``metric`` (rows, columns, values; ``None`` where absent)."""
    conditions = summary.get("conditions", {})
    categories: list[str] = []
    for cond in conditions.values():
        for cat in cond.get("per_category", {}):
            if cat not in categories:
                categories.append(cat)
    values = [[(c.get("per_category", {}).get(cat) or {}).get(metric) for c in conditions.values()]
              for cat in categories]
    return categories, list(conditions), values


def position_bias(summary: Mapping[str, Any]) -> list[Bar]:
    """Share of answers on the first shown position, clean vs swapped, for each option-swap
    condition (50% = no preference)."""
    bars = []
    for name, cond in summary.get("conditions", {}).items():
        metrics = cond.get("probe_metrics") or {}
        if metrics.get("position_bias_clean") is not None and \
                metrics.get("position_bias_swapped") is not None:
            bars.append(Bar(f"{name}: clean", metrics["position_bias_clean"], None, None))
            bars.append(Bar(f"{name}: swapped", metrics["position_bias_swapped"], None, None))
    return bars


def attack_curves(summary: Mapping[str, Any]) -> list[Curve]:
    """Attack success rate against the budget for each attack probe that reports it."""
    grouped: dict[tuple[str, str], list[Point]] = {}
    for name, cond in summary.get("conditions", {}).items():
        probe = cond.get("probe") or {}
        rate = (cond.get("probe_metrics") or {}).get("attack_success_rate")
        param = curve_param(probe.get("params") or {})
        if rate is None or param is None:
            continue
        grouped.setdefault((probe.get("name") or name, param), []).append(
            Point(float(probe["params"][param]), rate, None, None, name))
    return [Curve(probe, param, "attack_success_rate", tuple(sorted(pts, key=lambda p: p.x)))
            for (probe, param), pts in grouped.items()]


def scalar_probe_metrics(cond: Mapping[str, Any]) -> dict[str, float]:
    """A condition's scalar probe metrics (per-pair mappings stay in ``summary.json``)."""
    return {k: v for k, v in (cond.get("probe_metrics") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
