"""Weights & Biases backend: one W&B run per experiment (per Hydra job), finished always.

Offline by default, with the run files inside the run directory (``<run_dir>/wandb/``), so no
account is needed; ``wandb sync <run_dir>/wandb/offline-run-*`` uploads them later. Online when
``mode: online`` (credentials from ``wandb login`` or ``WANDB_API_KEY``; never logged).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from robustness.errors import ConfigError
from robustness.tracking.base import ExampleImage, RunInfo, Table, Tracker

log = logging.getLogger(__name__)
MODES = ("offline", "online", "disabled")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def condition_summary_keys(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """A condition's W&B summary keys: ``<c>/<metric>``, ``<c>/shift/<metric>``,
    ``<c>/ci/<metric>`` ([low, high]), ``<c>/probe/<metric>`` and ``<c>/param/<name>``."""
    flat: dict[str, Any] = {}
    for key, value in (metrics.get("overall") or {}).items():
        if _number(value):
            flat[f"{name}/{key}"] = value
    for key, value in (metrics.get("shift") or {}).items():
        if _number(value):
            flat[f"{name}/shift/{key}"] = value
        elif key.endswith("_ci") and isinstance(value, list):
            flat[f"{name}/ci/shift_{key[:-3]}"] = value
    for key, value in (metrics.get("ci") or {}).items():
        if isinstance(value, list):
            flat[f"{name}/ci/{key}"] = value
    for key, value in (metrics.get("probe_metrics") or {}).items():
        if _number(value):
            flat[f"{name}/probe/{key}"] = value
    for key, value in ((metrics.get("probe") or {}).get("params") or {}).items():
        if _number(value):
            flat[f"{name}/param/{key}"] = value
    return flat


class WandbTracker(Tracker):
    """Logs configs, per-condition summary metrics, tables and example images to W&B."""

    def __init__(self, project: str = "mediconfusion-robustness", entity: str | None = None,
                 mode: str = "offline", name: str | None = None, group: str | None = None,
                 job_type: str | None = None, tags: Sequence[str] = (),
                 notes: str | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"logger.mode: must be one of {', '.join(MODES)}, got {mode!r}")
        self.project, self.entity, self.mode = project, entity, mode
        self.name, self.group, self.job_type = name, group, job_type
        self.extra_tags = tuple(tags or ())
        self.notes = notes
        self.run: Any = None

    def start(self, run: RunInfo) -> None:
        import wandb

        tags = tuple(dict.fromkeys((*run.tags, *self.extra_tags)))
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.name or run.name,
            group=self.group or run.group or None,
            job_type=self.job_type or run.job_type or None,
            tags=[t[:64] for t in tags],
            notes=self.notes,
            config=run.config,
            dir=str(run.run_dir),
            mode=self.mode,
            reinit="finish_previous",  # a sweep in one process never shares a run
            settings=wandb.Settings(silent=True, console="off", save_code=False),
        )
        log.info("W&B run %s (%s) in %s", self.run.name, self.mode, run.run_dir / "wandb")

    def log_condition(self, name: str, metrics: dict[str, Any]) -> None:
        if self.run is None:
            return
        self.run.summary.update(condition_summary_keys(name, metrics))

    def log_tables(self, tables: dict[str, Table]) -> None:
        if self.run is None:
            return
        import wandb

        payload = {name: wandb.Table(columns=list(t.columns), data=[list(r) for r in t.rows])
                   for name, t in tables.items()}
        self.run.log(payload)

    def log_examples(self, condition: str, examples: Sequence[ExampleImage],
                     same_pixels_as: str | None = None) -> None:
        if self.run is None or not examples:
            return
        import wandb

        self.run.log({f"examples/{condition}": [wandb.Image(e.pixels, caption=e.caption)
                                                for e in examples]})

    def log_summary(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        from robustness.tracking.wandb_charts import log_charts, log_curve_history
        from robustness.tracking.wandb_lineage import log_lineage

        log_curve_history(self.run, summary)
        log_charts(self.run, summary)
        log_lineage(self.run, summary)
        keep = {k: v for k, v in summary.items() if k not in ("conditions",)}
        self.run.summary.update({"run": keep})

    def finish(self, status: str = "ok") -> None:
        if self.run is None:
            return
        code = {"ok": 0, "interrupted": 130}.get(status, 1)
        try:
            self.run.finish(exit_code=code)
        finally:
            self.run = None
