"""Regression rules of the gate: which metrics are checked, their margins, α and the correction.

Rules live in YAML (``conf/gate/default.yaml``, ``conf/gate/strict.yaml`` or any file); a file
overrides the built-in defaults key by key, so a three-line file that only changes ``alpha`` is
complete. The built-in defaults equal ``conf/gate/default.yaml`` (a test keeps them in step), so
the gate also works where the ``conf/`` folder is not installed (a model repository's CI).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

from robustness.data.text_files import read_text
from robustness.errors import ConfigError

Correction = Literal["holm", "bonferroni", "none"]
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "none")

# metric -> True where a higher value is better
LEVEL_METRICS: dict[str, bool] = {
    "set_accuracy": True,
    "individual_accuracy": True,
    "confusion": False,
    "invalid_rate": False,
}
SHIFT_METRICS: dict[str, str] = {f"{m}_shift": m for m in LEVEL_METRICS}
# per-image probe metrics (compared image by image) -> True where a higher value is better
PROBE_METRICS: dict[str, bool] = {
    "order_consistency": True,  # option_swap: same option content chosen in both orders
    "position_bias": False,  # option_swap: |% answers at displayed A - 50|
    "flip_rate": False,  # every probe: % images whose answer differs from clean
    "attack_success_rate": False,  # attacks: % images right on clean and wrong under attack
    "answer_follows_image": True,  # pair probes: % slot answers equal to the clean answer
}
# saliency grounding of the images both runs explained -> True where a higher value is better
SALIENCY_METRICS: dict[str, bool] = {
    "mask_energy_ratio": True,  # evidence inside the phantom mask / its fair share (a ratio)
}
# pair-level metrics (official category weighting); shifts apply to probe conditions only
CATEGORY_METRICS: tuple[str, ...] = ("set_accuracy", "confusion", "set_accuracy_shift",
                                     "confusion_shift")



def presets_dir() -> Path:
    """``gate/`` in the toolkit's config folder (installed package or checkout)."""
    from robustness.configs import config_dir

    return config_dir("gate/default.yaml") / "gate"


@dataclass(frozen=True)
class MetricRule:
    """One metric's rule: a change worse than ``margin`` points warns, and fails if significant."""

    margin: float = 2.0
    gate: bool = True


@dataclass(frozen=True)
class CategoryRules:
    """Per-category checks: reported by default, gating only when ``gate`` is set."""

    conditions: tuple[str, ...] | None = ("clean",)  # None: every compared condition
    metrics: Mapping[str, MetricRule] = field(default_factory=lambda: {
        "set_accuracy": MetricRule(margin=5.0, gate=False),
    })


@dataclass(frozen=True)
class GateRules:
    """Everything that decides a verdict. Margins are percentage points."""

    alpha: float = 0.05
    correction: Correction = "holm"
    resamples: int = 2000
    seed: int = 0
    ci_level: float = 0.95
    conditions: tuple[str, ...] | None = None  # None: all conditions, which must match
    clean: Mapping[str, MetricRule] = field(default_factory=lambda: {
        "set_accuracy": MetricRule(2.0, True),
        "confusion": MetricRule(2.0, True),
    })
    probes: Mapping[str, MetricRule] = field(default_factory=lambda: {
        "set_accuracy": MetricRule(2.0, False),
        "set_accuracy_shift": MetricRule(2.0, True),
        "confusion_shift": MetricRule(2.0, False),
    })
    per_category: CategoryRules = field(default_factory=CategoryRules)
    probe_metrics: Mapping[str, MetricRule] = field(default_factory=lambda: {
        "order_consistency": MetricRule(2.0, True),
        "position_bias": MetricRule(2.0, False),
        "flip_rate": MetricRule(2.0, False),
        "attack_success_rate": MetricRule(2.0, False),
        "answer_follows_image": MetricRule(2.0, False),
    })
    saliency: Mapping[str, MetricRule] = field(default_factory=lambda: {
        "mask_energy_ratio": MetricRule(2.0, False),  # margin in the ratio's own units
    })
    uncertainty: str = "clustered"  # clustered: pairs sharing an image count as one unit
    source: str = "built-in defaults"

    def describe(self) -> str:
        """One line for reports: α, correction and the rules' origin."""
        return f"alpha {self.alpha:g}, {self.correction} correction, rules from {self.source}"


def resolve_config_path(name: str | Path) -> Path:
    """A file path, or a preset name in ``conf/gate`` (``strict`` → ``conf/gate/strict.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    folder = presets_dir()
    preset = folder / f"{name}.yaml"
    if path.suffix == "" and preset.is_file():
        return preset
    presets = sorted(p.stem for p in folder.glob("*.yaml"))
    hint = f" (presets: {', '.join(presets)})" if presets else ""
    raise ConfigError(f"{name}: no such gate config file{hint}")


def load_rules(config: str | Path | None = None) -> GateRules:
    """Rules from ``config`` (a YAML file or preset name) over the built-in defaults.

    Without ``config``: ``conf/gate/default.yaml`` (the built-in defaults equal that file).
    """
    if config is None:
        config = presets_dir() / "default.yaml"
    path = resolve_config_path(config)
    import yaml

    try:
        raw = yaml.safe_load(read_text(path, "a gate rules YAML file"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of gate settings")
    return rules_from_mapping(raw, source=_shown(path))


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter reports)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def rules_from_mapping(raw: Mapping[str, Any], *, source: str = "mapping",
                       base: GateRules | None = None) -> GateRules:
    """Overlay ``raw`` (parsed YAML) onto ``base`` (default: built-in defaults), validating keys."""
    base = base or GateRules()
    reader = _Reader(source)
    known = {"alpha", "correction", "resamples", "seed", "ci_level", "conditions", "clean",
             "probes", "per_category", "probe_metrics", "saliency", "uncertainty"}
    reader.no_unknown(raw, known, "")
    updates: dict[str, Any] = {"source": source}
    if "alpha" in raw:
        updates["alpha"] = reader.number(raw["alpha"], "alpha", low=0.0, high=1.0, open_ends=True)
    if "correction" in raw:
        value = raw["correction"]
        if value is False or value is None:
            value = "none"
        if value not in CORRECTIONS:
            raise reader.error("correction",
                               f"must be one of {', '.join(CORRECTIONS)}, got {value!r}")
        updates["correction"] = value
    if "resamples" in raw:
        updates["resamples"] = reader.integer(raw["resamples"], "resamples", low=100)
    if "seed" in raw:
        updates["seed"] = reader.integer(raw["seed"], "seed", low=0)
    if "ci_level" in raw:
        updates["ci_level"] = reader.number(raw["ci_level"], "ci_level", low=0.0, high=1.0,
                                            open_ends=True)
    if "conditions" in raw:
        updates["conditions"] = reader.conditions(raw["conditions"], "conditions")
    if "clean" in raw:
        updates["clean"] = reader.metric_rules(raw["clean"], "clean", base.clean, LEVEL_METRICS)
    if "probes" in raw:
        allowed = list(LEVEL_METRICS) + list(SHIFT_METRICS)
        updates["probes"] = reader.metric_rules(raw["probes"], "probes", base.probes, allowed)
    if "per_category" in raw:
        updates["per_category"] = reader.category_rules(raw["per_category"], base.per_category)
    if "uncertainty" in raw:
        if raw["uncertainty"] not in ("clustered", "pairs"):
            raise reader.error("uncertainty", f"must be clustered or pairs, got "
                                              f"{raw['uncertainty']!r}")
        updates["uncertainty"] = raw["uncertainty"]
    if "probe_metrics" in raw:
        updates["probe_metrics"] = reader.metric_rules(raw["probe_metrics"], "probe_metrics",
                                                       base.probe_metrics, list(PROBE_METRICS))
    if "saliency" in raw:
        updates["saliency"] = reader.metric_rules(raw["saliency"], "saliency", base.saliency,
                                                  list(SALIENCY_METRICS))
    return replace(base, **updates)


class _Reader:
    """Validation helpers that name the file and the key in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: field '{key}': {problem}")

    def no_unknown(self, raw: Mapping[str, Any], known: set[str] | list[str], prefix: str) -> None:
        for key in raw:
            if key not in known:
                raise self.error(f"{prefix}{key}",
                                 f"unknown setting (known: {', '.join(sorted(known))})")

    def number(self, value: Any, key: str, *, low: float | None = None, high: float | None = None,
               open_ends: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {value!r}")
        too_low = low is not None and (value <= low if open_ends else value < low)
        too_high = high is not None and (value >= high if open_ends else value > high)
        if too_low or too_high:
            bounds = f"{'(' if open_ends else '['}{low}, {high}{')' if open_ends else ']'}"
            raise self.error(key, f"must lie in {bounds}, got {value}")
        return float(value)

    def integer(self, value: Any, key: str, *, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.error(key, f"expected an integer >= {low}, got {value!r}")
        return value

    def conditions(self, value: Any, key: str) -> tuple[str, ...] | None:
        if value is None or value == "all":
            return None
        if isinstance(value, str):
            value = [value]
        names_ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        if not names_ok or not value:
            raise self.error(key, "expected 'all' or a non-empty list of condition names")
        return tuple(value)

    def metric_rules(self, raw: Any, key: str, base: Mapping[str, MetricRule],
                     allowed: list[str] | tuple[str, ...] | dict[str, bool],
                     new: MetricRule = MetricRule()) -> dict[str, MetricRule]:
        """``{metric: {margin, gate}}`` over ``base``; a metric set to null or false is dropped.

        A metric not in ``base`` starts from ``new`` (per category: not gating)."""
        if not isinstance(raw, dict):
            raise self.error(key, "expected a mapping of metric -> {margin, gate}")
        rules = dict(base)
        for metric, spec in raw.items():
            where = f"{key}.{metric}"
            if metric not in allowed:
                raise self.error(where, f"unknown metric (known: {', '.join(allowed)})")
            if spec is None or spec is False:
                rules.pop(metric, None)
                continue
            if not isinstance(spec, dict):
                raise self.error(where, "expected {margin: POINTS, gate: true|false} or null")
            self.no_unknown(spec, {"margin", "gate"}, f"{where}.")
            current = rules.get(metric, new)
            margin = current.margin
            if "margin" in spec:
                margin = self.number(spec["margin"], f"{where}.margin", low=0.0)
            gate = current.gate
            if "gate" in spec:
                if not isinstance(spec["gate"], bool):
                    raise self.error(f"{where}.gate",
                                     f"expected true or false, got {spec['gate']!r}")
                gate = spec["gate"]
            rules[metric] = MetricRule(margin=margin, gate=gate)
        return rules

    def category_rules(self, raw: Any, base: CategoryRules) -> CategoryRules:
        if raw is None or raw is False:
            return CategoryRules(conditions=base.conditions, metrics={})
        if not isinstance(raw, dict):
            raise self.error("per_category", "expected a mapping")
        self.no_unknown(raw, {"conditions", "metrics"}, "per_category.")
        conditions = base.conditions
        if "conditions" in raw:
            conditions = self.conditions(raw["conditions"], "per_category.conditions")
        metrics = base.metrics
        if "metrics" in raw:
            if raw["metrics"] is None or raw["metrics"] is False:
                metrics = {}
            else:
                metrics = self.metric_rules(raw["metrics"], "per_category.metrics", base.metrics,
                                            CATEGORY_METRICS, new=MetricRule(5.0, False))
        return CategoryRules(conditions=conditions, metrics=metrics)
