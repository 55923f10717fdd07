"""The sweep summary's agreement between modes: same choice % and Cohen's kappa, image by image."""

from __future__ import annotations

import json
from pathlib import Path

from robustness.tracking.sweep import (SweepSummary, cohen_kappa, collect, judge_audit,
                                       mode_agreement)


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


def write_ff_job(folder: Path, judge: dict, answers: list[tuple[str, object]]) -> None:
    """An FF job: (reply text, judged choice) per image."""
    (folder / "predictions").mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "model": "m", "mode": "ff", "benchmark": {"content_hash": "h"},
        "mode_identity": {"mode": "ff", "judge": judge},
        "conditions": {"clean": {"overall": {"set_accuracy": 50.0, "confusion": 0.0,
                                             "invalid_rate": 0.0}}}}))
    (folder / "predictions" / "clean.jsonl").write_text("".join(
        json.dumps({"pair_id": str(i // 2), "image": i % 2 + 1, "choice": c,
                    "raw": {"text": text}}) + "\n" for i, (text, c) in enumerate(answers)))


def test_judge_audit_compares_verdicts_on_identical_replies(tmp_path):
    replies = ["a lesion", "no lesion", "unsure", "left side"]
    write_ff_job(tmp_path / "0_lexical", {"judge": "lexical"},
                 list(zip(replies, ["A", "B", None, "A"])))
    # the second job's last reply differs: its verdict is not the judge's alone
    write_ff_job(tmp_path / "1_model", {"judge": "model", "adapter": {"model_id": "gpt-4o"}},
                 list(zip(replies[:3] + ["right side"], ["A", "A", None, "B"])))
    write_job(tmp_path / "2_mc", "mc", ["A", "B", "B", "A"])
    jobs = collect(tmp_path)
    (audit,) = judge_audit(tmp_path, jobs)
    assert audit["judges"] == ["lexical", "model:gpt-4o"]
    assert audit["images"] == 4 and audit["same_replies"] == 3
    assert audit["agreement"] == round(100 * 2 / 3, 2)
    # FF (per judge) vs MC, image by image, in the mode agreement
    rows = {tuple(r["modes"]): r for r in mode_agreement(tmp_path, jobs)}
    assert rows[("ff [lexical]", "mc")]["agreement"] == 75.0
    assert ("ff [lexical]", "ff [model:gpt-4o]") in rows
    config = type("C", (), {})()
    config.hydra = type("H", (), {"sweep": type("S", (), {"dir": str(tmp_path)})()})()
    SweepSummary().on_multirun_end(config)
    assert "Judge audit" in (tmp_path / "sweep_summary.md").read_text()
    assert json.loads((tmp_path / "sweep_summary.json").read_text())["judge_audit"] == [audit]
