"""After a sweep (``robustness -m ...``): one table comparing every job, printed and saved.

A Hydra callback (``hydra.callbacks.sweep_summary`` in ``conf/config.yaml``) reads each job's
``summary.json`` under the sweep folder and writes ``sweep_summary.md`` (and the comparison page
``sweep_summary.html``) beside them, with the
clean metrics and every condition's set accuracy and shift, plus scalar probe metrics (e.g.
option_swap's position bias), so models, modes and probes line up in one place. When jobs answer
the same pairs with the same model in several modes (``experiment=paper_table``), it adds the
agreement between modes on the clean answers, image by image: % of images with the same choice
and Cohen's κ (choices A, B and invalid), also in ``sweep_summary.json``. FF jobs are told apart
by their judge; when two judges scored the same model's FF replies, the judge audit compares
their verdicts on the images whose replies are identical (a verdict difference there is the
judge's alone).
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


def _clean_records(sweep_dir: Path, job: str) -> dict[tuple[str, int], dict[str, Any]] | None:
    path = sweep_dir / job / "predictions" / "clean.jsonl"
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        return {(str(r["pair_id"]), int(r["image"])): r for r in records}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def judge_label(summary: dict[str, Any]) -> str | None:
    """The FF judge of a job (``lexical``, ``model:<judge model>``), None for other modes."""
    identity = summary.get("mode_identity")
    judge = identity.get("judge") if isinstance(identity, dict) else None
    if not isinstance(judge, dict):
        return None
    label = str(judge.get("judge"))
    adapter = judge.get("adapter")
    if isinstance(adapter, dict) and adapter.get("model_id"):
        label += f":{adapter['model_id']}"
    return label


def mode_label(summary: dict[str, Any]) -> str:
    """The mode, with its judge for FF (``ff [lexical]``)."""
    judge = judge_label(summary)
    return f"{summary.get('mode')} [{judge}]" if judge else str(summary.get("mode"))


def _agreement(x: list[Any], y: list[Any]) -> dict[str, Any]:
    kappa = cohen_kappa(x, y)
    return {"agreement": round(100.0 * sum(p == q for p, q in zip(x, y)) / len(x), 2)
            if x else None, "kappa": None if kappa is None else round(kappa, 4)}


def cohen_kappa(a: list[Any], b: list[Any]) -> float | None:
    """Cohen's κ of two raters' labels on the same items (None when chance agreement is 1)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    expected = sum((a.count(k) / n) * (b.count(k) / n) for k in labels)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def _by_model(jobs: list[tuple[str, dict[str, Any]]], label: Any
              ) -> dict[Any, dict[str, str]]:
    """model -> {label(summary): job} over jobs of the same benchmark (first job per label);
    jobs whose label is None are left out."""
    groups: dict[tuple[Any, Any], dict[str, str]] = {}
    for job, summary in jobs:
        name = label(summary)
        if name is not None:
            key = (summary.get("model"), (summary.get("benchmark") or {}).get("content_hash"))
            groups.setdefault(key, {}).setdefault(name, job)
    return {key: dict(sorted(by_label.items())) for key, by_label in groups.items()}


def _paired_records(jobs: list[tuple[str, dict[str, Any]]], label: Any, read: Any) -> Any:
    """(model, label A, label B, records A, records B, shared image keys) for every pair of a
    model's jobs told apart by ``label`` whose clean records both exist."""
    for (model, _), by_label in _by_model(jobs, label).items():
        labels = list(by_label)
        loaded = {lab: read(by_label[lab]) for lab in labels}
        for i, first in enumerate(labels):
            for second in labels[i + 1:]:
                a, b = loaded[first], loaded[second]
                if a and b:
                    yield model, first, second, a, b, sorted(set(a) & set(b))


def mode_agreement(sweep_dir: Path, jobs: list[tuple[str, dict[str, Any]]],
                   records: Any = None) -> list[dict[str, Any]]:
    """For each model and benchmark answered in several modes: every pair of modes' agreement
    on the clean answers (same images only)."""
    read = records or (lambda job: _clean_records(sweep_dir, job))
    out = []
    for model, first, second, a, b, keys in _paired_records(jobs, mode_label, read):
        x = [a[k].get("choice") or "invalid" for k in keys]
        y = [b[k].get("choice") or "invalid" for k in keys]
        out.append({"model": model, "modes": [first, second], "images": len(keys),
                    **_agreement(x, y)})
    return out


def judge_audit(sweep_dir: Path, jobs: list[tuple[str, dict[str, Any]]],
                records: Any = None) -> list[dict[str, Any]]:
    """For each model whose FF replies two judges scored: the judges' agreement on the images
    whose reply text is identical in both jobs."""
    read = records or (lambda job: _clean_records(sweep_dir, job))

    def reply(record: dict[str, Any]) -> Any:
        return (record.get("raw") or {}).get("text")

    out = []
    for model, first, second, a, b, keys in _paired_records(jobs, judge_label, read):
        same = [k for k in keys if reply(a[k]) is not None and reply(a[k]) == reply(b[k])]
        x = [a[k].get("choice") or "invalid" for k in same]
        y = [b[k].get("choice") or "invalid" for k in same]
        out.append({"model": model, "judges": [first, second], "images": len(keys),
                    "same_replies": len(same), **_agreement(x, y)})
    return out


def render(jobs: list[tuple[str, dict[str, Any]]],
           agreement: list[dict[str, Any]] | None = None,
           audit: list[dict[str, Any]] | None = None) -> str:
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
    if audit:
        table = [[a["model"], f"{a['judges'][0]} vs {a['judges'][1]}", a["images"],
                  a["same_replies"], _fmt(a["agreement"]), _fmt(a["kappa"], 3)] for a in audit]
        text += ("\n## Judge audit (FF verdicts on identical replies)\n\n"
                 + _md_table(["model", "judges", "images", "same replies", "same verdict %",
                              "Cohen's κ"], table) + "\n")
    return text


class SweepSummary(Callback):
    """Writes ``<sweep dir>/sweep_summary.md`` and prints it when a multirun ends."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = collect(sweep_dir)
        if not jobs:
            return
        cache: dict[str, Any] = {}

        def records(job: str) -> Any:  # each job's predictions read once for both tables
            if job not in cache:
                cache[job] = _clean_records(sweep_dir, job)
            return cache[job]

        agreement = mode_agreement(sweep_dir, jobs, records)
        audit = judge_audit(sweep_dir, jobs, records)
        text = render(jobs, agreement, audit)
        (sweep_dir / "sweep_summary.md").write_text(text, encoding="utf-8")
        (sweep_dir / "sweep_summary.json").write_text(json.dumps(
            {"jobs": [job for job, _ in jobs], "agreement": agreement, "judge_audit": audit},
            indent=2) + "\n",
            encoding="utf-8")
        write_sweep_page(sweep_dir)
        print(f"\n{text}\nsweep outputs: {sweep_dir}")


def write_sweep_page(sweep_dir: Path) -> None:
    """``sweep_summary.html``: the jobs compared as ``robustness report`` does (the first job
    is the gate's baseline); jobs on different benchmarks get the markdown only, with a note."""
    from robustness.errors import UserError
    from robustness.report.compare import write_comparison

    try:
        write_comparison([sweep_dir], sweep_dir / "sweep_summary.html", markdown=False)
    except UserError as err:
        log.warning("sweep_summary.html not written: %s", err)
    except Exception as err:  # noqa: BLE001 - the jobs' results stand; a page must not fail them
        log.warning("sweep_summary.html not written (%s: %s); `robustness report %s --out "
                    "FILE.html` draws it", type(err).__name__, err, sweep_dir)
