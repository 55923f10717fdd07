"""``robustness score`` prints exactly the official MediConfusion table for official results files.

Random seeded results over the real 176 pairs (FF-style scores 0–10 per option, MC-style 10/0
with invalid answers, degenerate all-invalid and all-A runs) are scored twice: by the independent
transcription of the official code in ``tests/official_reference.py`` and by ``robustness score``
(a subprocess, as a user runs it). The tables must agree line by line, trailing spaces included.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.official_reference import OfficialScorer, official_results_file


def _answers(data: dict, style: str, rng: random.Random) -> dict:
    def one() -> dict[str, int]:
        if style == "ff":
            return {"A": rng.randint(0, 10), "B": rng.randint(0, 10)}
        if style == "mc":  # the official manual clean-up: 10 for the letter found, 0/0 if none or both
            return rng.choice([{"A": 10, "B": 0}, {"A": 0, "B": 10}, {"A": 0, "B": 0}])
        if style == "invalid":
            return {"A": 0, "B": 0}
        if style == "all_a":
            return {"A": 10, "B": 0}
        raise ValueError(style)

    return {pid: {"im1": {**one(), "full_answer": "..."}, "im2": {**one(), "full_answer": "..."}}
            for pid in data}


def _official_table(scorer: OfficialScorer, results: dict) -> list[str]:
    buf = io.StringIO()
    scorer.print_score(scorer.evaluate(results), file=buf)
    text = buf.getvalue()
    assert text.startswith("\n\n")  # the official print('\n') before the table
    return text[2:].rstrip("\n").split("\n")


CASES = [("ff", 0, 3), ("ff", 1, 3), ("ff", 2, 1), ("ff", 3, 5.5), ("mc", 4, 3), ("mc", 5, 3),
         ("invalid", 6, 3), ("all_a", 7, 3)]


@pytest.mark.real_data
@pytest.mark.parametrize("style,seed,threshold", CASES)
def test_score_table_equals_the_official_table(style, seed, threshold, real_annotations,
                                               real_statistics, tmp_path):
    data = json.loads(real_annotations.read_text())
    scorer = OfficialScorer(data, real_statistics, threshold)
    results = official_results_file(data, _answers(data, style, random.Random(seed)), scorer)
    path = tmp_path / "model_ff.json"
    path.write_text(json.dumps(results))
    expected = _official_table(scorer, results)

    run = subprocess.run([sys.executable, "-m", "robustness", "score", str(path), "--annotations",
                          str(real_annotations), "--threshold", str(threshold)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    got = run.stdout.rstrip("\n").split("\n")
    assert len(got) == len(expected) == 1 + len(real_statistics) + 1
    for ours, theirs in zip(got, expected):
        assert ours == theirs


def test_reference_runs_as_a_script(real_annotations, real_statistics, tmp_path):
    data = json.loads(real_annotations.read_text())
    scorer = OfficialScorer(data, real_statistics)
    results = official_results_file(data, _answers(data, "all_a", random.Random(0)), scorer)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results))
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "official_reference.py"),
                          str(path), "--dataset", str(real_annotations), "--stats",
                          str(real_annotations.with_name("statistics.json"))],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    last = run.stdout.rstrip("\n").split("\n")[-1].split()
    assert last[:3] == ["All", "176", "0.0"] and last[4] == "100.0"  # set acc 0, confusion 100


@pytest.mark.real_data
@pytest.mark.parametrize("style,seed", [("ff", 11), ("mc", 12)])
def test_jsonl_predictions_give_the_official_table(style, seed, real_annotations, real_statistics,
                                                   tmp_path):
    data = json.loads(real_annotations.read_text())
    scorer = OfficialScorer(data, real_statistics, 3)
    results = official_results_file(data, _answers(data, style, random.Random(seed)), scorer)
    lines = []
    for pid, record in results.items():
        for image, slot in ((1, "im1"), (2, "im2")):
            scores = record["answer"][slot]
            _, chosen = scorer.check_answer(None, scores["A"], scores["B"], 3)
            lines.append(json.dumps({"pair_id": pid, "image": image,
                                     "choice": None if chosen == "-" else chosen}))
    random.Random(seed).shuffle(lines)  # record order must not matter
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    run = subprocess.run([sys.executable, "-m", "robustness", "score", str(path), "--annotations",
                          str(real_annotations)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip("\n").split("\n") == _official_table(scorer, results)
