"""After a sweep (``robustness -m ...``): one table comparing every job, printed and saved.

A Hydra callback (``hydra.callbacks.sweep_summary`` in ``conf/config.yaml``) reads each job's
``summary.json`` under the sweep folder and writes ``sweep_summary.md`` beside them, with the
clean metrics and every condition's set accuracy and shift, plus scalar probe metrics (e.g.
option_swap's position bias), so models, modes and probes line up in one place. When jobs answer
the same pairs with the same model in several modes (``experiment=paper_table``), it adds the
agreement between modes on the clean answers, image by image: % of images with the same choice
and Cohen's κ (choices A, B and invalid), also in ``sweep_summary.json``.
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


def _clean_choices(sweep_dir: Path, job: str) -> dict[tuple[str, int], Any] | None:
    path = sweep_dir / job / "predictions" / "clean.jsonl"
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
    except (OSError, ValueError):
        return None
    return {(str(r["pair_id"]), int(r["image"])): r.get("choice") for r in records}


def cohen_kappa(a: list[Any], b: list[Any]) -> float | None:
    """Cohen's κ of two raters' labels on the same items (None when chance agreement is 1)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    expected = sum((a.count(k) / n) * (b.count(k) / n) for k in labels)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def mode_agreement(sweep_dir: Path, jobs: list[tuple[str, dict[str, Any]]]
                   ) -> list[dict[str, Any]]:
    """For each model and benchmark answered in several modes: every pair of modes' agreement
    on the clean answers (same images only)."""
    groups: dict[tuple[Any, Any], dict[str, str]] = {}
    for job, summary in jobs:
        key = (summary.get("model"), (summary.get("benchmark") or {}).get("content_hash"))
        groups.setdefault(key, {}).setdefault(str(summary.get("mode")), job)
    out = []
    for (model, _), by_mode in groups.items():
        modes = sorted(by_mode)
        choices = {m: _clean_choices(sweep_dir, by_mode[m]) for m in modes}
        for i, first in enumerate(modes):
            for second in modes[i + 1:]:
                a, b = choices[first], choices[second]
                if not a or not b:
                    continue
                keys = sorted(set(a) & set(b))
                x = [a[k] or "invalid" for k in keys]
                y = [b[k] or "invalid" for k in keys]
                kappa = cohen_kappa(x, y)
                out.append({"model": model, "modes": [first, second], "images": len(keys),
                            "agreement": round(100.0 * sum(p == q for p, q in zip(x, y))
                                               / len(keys), 2) if keys else None,
                            "kappa": None if kappa is None else round(kappa, 4)})
    return out


def render(jobs: list[tuple[str, dict[str, Any]]],
           agreement: list[dict[str, Any]] | None = None) -> str:
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
    text = "# Sweep summary\n\n" + _md_table(columns, rows) + "\n"
    if agreement:
        table = [[a["model"], f"{a['modes'][0]} vs {a['modes'][1]}", a["images"],
                  _fmt(a["agreement"]), _fmt(a["kappa"], 3)] for a in agreement]
        text += ("\n## Agreement between modes (clean answers)\n\n"
                 + _md_table(["model", "modes", "images", "same choice %", "Cohen's κ"], table)
                 + "\n")
    return text


class SweepSummary(Callback):
    """Writes ``<sweep dir>/sweep_summary.md`` and prints it when a multirun ends."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = collect(sweep_dir)
        if not jobs:
            return
        agreement = mode_agreement(sweep_dir, jobs)
        text = render(jobs, agreement)
        (sweep_dir / "sweep_summary.md").write_text(text, encoding="utf-8")
        (sweep_dir / "sweep_summary.json").write_text(json.dumps(
            {"jobs": [job for job, _ in jobs], "agreement": agreement}, indent=2) + "\n",
            encoding="utf-8")
        print(f"\n{text}\nsweep outputs: {sweep_dir}")
