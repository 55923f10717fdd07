"""After a sweep (``robustness -m ...``): one table comparing every job, printed and saved.

A Hydra callback (``hydra.callbacks.sweep_summary`` in ``conf/config.yaml``) reads each job's
``summary.json`` under the sweep folder and writes ``sweep_summary.md`` beside them, with the
clean metrics and every condition's set accuracy and shift, plus scalar probe metrics (e.g.
option_swap's position bias), so models, modes and probes line up in one place.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from robustness.tracking.local import _fmt, _md_table, _signed, probe_metrics_line

log = logging.getLogger(__name__)


def collect(sweep_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(job folder name, summary) for every finished job, in job-number order."""
    found = []
    for path in sweep_dir.glob("*/summary.json"):
        try:
            found.append((path.parent.name, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            log.warning("skipping unreadable %s", path)

    def order(item: tuple[str, dict[str, Any]]) -> tuple[int, str]:
        head = item[0].split("_", 1)[0]
        return (int(head) if head.isdigit() else 1 << 30, item[0])

    return sorted(found, key=order)


def render(jobs: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown: one row per job and condition."""
    columns = ["job", "model", "mode", "condition", "set acc", "Δ set", "McNemar p",
               "confusion", "invalid", "probe metrics"]
    rows = []
    for job, summary in jobs:
        for name, cond in summary.get("conditions", {}).items():
            m, s = cond["overall"], cond.get("shift") or {}
            rows.append([job, summary.get("model"), summary.get("mode"), name,
                         _fmt(m["set_accuracy"]), _signed(s.get("set_accuracy")),
                         _fmt(s.get("mcnemar_p"), 3), _fmt(m["confusion"]),
                         _fmt(m["invalid_rate"]), probe_metrics_line(cond.get("probe_metrics") or {})])
    return "# Sweep summary\n\n" + _md_table(columns, rows) + "\n"


class SweepSummary(Callback):
    """Writes ``<sweep dir>/sweep_summary.md`` and prints it when a multirun ends."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = collect(sweep_dir)
        if not jobs:
            return
        text = render(jobs)
        (sweep_dir / "sweep_summary.md").write_text(text, encoding="utf-8")
        print(f"\n{text}\nsweep outputs: {sweep_dir}")
