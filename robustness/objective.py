"""The number a Hydra sweeper optimises: one metric of the run's summary (``objective:``).

``objective.metric`` names it as ``CONDITION/METRIC`` (``clean/set_accuracy``),
``CONDITION/shift/METRIC`` (``option_swap/shift/set_accuracy``: the change under the probe) or
``CONDITION/probe/METRIC`` (a probe metric, ``option_swap/probe/order_consistency``). The
condition ``probe`` stands for the run's only probe condition, whatever its name
(``gaussian_noise@3``), so a search over probe settings has one objective.
``objective.direction`` is ``maximize`` or ``minimize`` (the sweeper reads it).
"""

from __future__ import annotations

from typing import Any, Mapping

from robustness.errors import ConfigError

DIRECTIONS = ("maximize", "minimize")
SECTIONS = {"shift": "shift", "probe": "probe_metrics"}


def check_objective(objective: Mapping[str, Any] | None) -> None:
    """Refuse a malformed ``objective`` before any work (one line naming the field)."""
    if not objective or objective.get("metric") is None:
        return
    metric = objective["metric"]
    parts = metric.split("/") if isinstance(metric, str) else []
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3
                                                      and parts[1] not in SECTIONS):
        raise ConfigError(f"objective.metric: expected CONDITION/METRIC, CONDITION/shift/METRIC "
                          f"or CONDITION/probe/METRIC, got {metric!r}")
    if objective.get("direction") not in DIRECTIONS:
        raise ConfigError(f"objective.direction: expected maximize or minimize, got "
                          f"{objective.get('direction')!r}")


def objective_value(summary: Mapping[str, Any], objective: Mapping[str, Any] | None
                    ) -> float | None:
    """The objective's value in ``summary`` (None when no objective is set)."""
    if not objective or objective.get("metric") is None:
        return None
    check_objective(objective)
    parts = objective["metric"].split("/")
    conditions = summary["conditions"]
    name = parts[0]
    if name == "probe":
        probed = [c for c in conditions if c != "clean"]
        if len(probed) != 1:
            raise ConfigError(f"objective.metric: 'probe' needs exactly one probe condition, the "
                              f"run has {len(probed)} ({', '.join(probed) or 'none'})")
        name = probed[0]
    if name not in conditions:
        raise ConfigError(f"objective.metric: no condition {name!r} in this run "
                          f"({', '.join(conditions)})")
    node = conditions[name]
    section = SECTIONS.get(parts[1]) if len(parts) == 3 else "overall"
    values = node.get(section) or {}
    value = values.get(parts[-1])
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"objective.metric: {objective['metric']!r} is not a number in this "
                          f"run (known under {name}/{section}: {', '.join(values) or 'none'})")
    return float(value)
