"""The sweep summary's agreement between modes: same choice % and Cohen's kappa, image by image."""

from __future__ import annotations

import json
from pathlib import Path

from robustness.tracking.sweep import SweepSummary, cohen_kappa, collect, mode_agreement


def write_job(folder: Path, mode: str, choices: list) -> None:
    (folder / "predictions").mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "model": "m", "mode": mode, "benchmark": {"content_hash": "h"},
        "conditions": {"clean": {"overall": {"set_accuracy": 50.0, "confusion": 0.0,
                                             "invalid_rate": 0.0}}}}))
    (folder / "predictions" / "clean.jsonl").write_text("".join(
        json.dumps({"pair_id": str(i // 2), "image": i % 2 + 1, "choice": c}) + "\n"
        for i, c in enumerate(choices)))


def test_cohen_kappa():
    assert cohen_kappa(["A", "A", "B", "B"], ["A", "B", "B", "B"]) == 0.5
    assert cohen_kappa(["A", "B"], ["A", "B"]) == 1.0
    assert cohen_kappa(["A", "A"], ["A", "A"]) is None  # chance agreement is certain


def test_agreement_between_modes_in_the_sweep_summary(tmp_path):
    write_job(tmp_path / "0_m_mc", "mc", ["A", "A", "B", "B"])
    write_job(tmp_path / "1_m_gd", "gd", ["A", "B", "B", "B"])
    write_job(tmp_path / "2_m_ps", "ps", ["A", "A", None, "B"])
    rows = mode_agreement(tmp_path, collect(tmp_path))
    by_modes = {tuple(r["modes"]): r for r in rows}
    assert by_modes[("gd", "mc")]["agreement"] == 75.0 and by_modes[("gd", "mc")]["kappa"] == 0.5
    assert by_modes[("mc", "ps")]["agreement"] == 75.0  # an invalid answer is its own category
    config = type("C", (), {})()
    config.hydra = type("H", (), {"sweep": type("S", (), {"dir": str(tmp_path)})()})()
    SweepSummary().on_multirun_end(config)
    assert "Agreement between modes" in (tmp_path / "sweep_summary.md").read_text()
    saved = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert len(saved["agreement"]) == 3
