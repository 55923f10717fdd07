"""The contract of ``robustness score``, exercised as a user runs it (``python -m robustness score``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.records import make_pair_record

METRIC_KEYS = {"set_accuracy", "individual_accuracy", "confusion", "invalid_rate", "precision",
               "valid_pairs"}


def run_score(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustness", "score", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture
def annotations(write_dataset) -> Path:
    return write_dataset({
        "1": make_pair_record("A", "B", ("Cerebral",), ("Cerebral", "Vascular"), 1, 2),
        "2": make_pair_record("B", "A", ("Spinal",), ("Spinal",), 3, 4),
        "3": make_pair_record("A", "B", ("Vascular",), ("Cardiac",), 5, 6),
    })


# pair 1 both right; pair 2 confused (A, A); pair 3 image 2 invalid
CHOICES = {("1", 1): "A", ("1", 2): "B", ("2", 1): "A", ("2", 2): "A", ("3", 1): "A", ("3", 2): None}


def write_jsonl(path: Path, choices=CHOICES, extra: str = "") -> Path:
    lines = [json.dumps({"pair_id": p, "image": i, "choice": c, "raw": {"text": "x"}})
             for (p, i), c in choices.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def write_official(path: Path, scores: dict[tuple[str, int], tuple[float, float]]) -> Path:
    results: dict = {}
    for (pid, image), (a, b) in scores.items():
        results.setdefault(pid, {"answer": {}, "score": {}})["answer"][f"im{image}"] = {
            "A": a, "B": b, "full_answer": "..."}
    path.write_text(json.dumps(results))
    return path


def expect_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("robustness score: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_json_output_has_exactly_the_contract_keys(annotations, tmp_path):
    result = run_score(write_jsonl(tmp_path / "p.jsonl"), "--annotations", annotations, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"overall", "per_category", "ci", "n_pairs", "uncertainty"}
    assert out["uncertainty"] == {"method": "pairs", "clusters": 3}  # no shared images
    assert out["n_pairs"] == 3
    assert set(out["overall"]) == METRIC_KEYS
    assert list(out["per_category"]) == ["Cerebral", "Vascular", "Spinal", "Cardiac"]
    assert all(set(m) == METRIC_KEYS for m in out["per_category"].values())
    assert set(out["ci"]) == {"set_accuracy", "individual_accuracy", "confusion"}
    assert all(len(v) == 2 and v[0] <= v[1] for v in out["ci"].values())
    overall = out["overall"]
    assert isinstance(overall["valid_pairs"], int) and isinstance(overall["set_accuracy"], float)
    # hand-computed: set 1/3, individual 4/6, invalid 1/6, valid pairs 2, confusion 1/2, precision 1/1
    assert overall == {"set_accuracy": 33.33, "individual_accuracy": 66.67, "invalid_rate": 16.67,
                       "valid_pairs": 2, "confusion": 50.0, "precision": 100.0}
    # Cardiac holds only pair 3's image 2 (invalid): no valid pair, so confusion is 0 by convention
    assert out["per_category"]["Cardiac"] == {"set_accuracy": 0.0, "individual_accuracy": 0.0,
                                              "invalid_rate": 100.0, "valid_pairs": 0,
                                              "confusion": 0.0, "precision": 0.0}


def test_table_output(annotations, tmp_path):
    result = run_score(write_jsonl(tmp_path / "p.jsonl"), "--annotations", annotations)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").split("\n")
    assert lines[0].split()[:2] == ["Category", "Total"]
    assert [line.split()[0] for line in lines[1:]] == ["Cerebral", "Vascular", "Spinal", "Cardiac", "All"]
    assert lines[-1].split() == ["All", "3", "33.33", "66.67", "50.0", "2", "16.67", "100.0", "1"]
    assert lines[4].split() == ["Cardiac", "1", "0.0", "0.0", "0", "0", "100.0", "0", "0"]


def test_official_format_is_detected_and_threshold_applies(annotations, tmp_path):
    scores = {("1", 1): (8, 4), ("1", 2): (1, 9), ("2", 1): (5, 3), ("2", 2): (2, 7),
              ("3", 1): (10, 0), ("3", 2): (4, 4)}
    path = write_official(tmp_path / "llava_ff.json", scores)
    default = json.loads(run_score(path, "--annotations", annotations, "--json").stdout)
    # tr=3: 1:(A,B) right; 2:(invalid, B) image 2 wrong; 3:(A, invalid)
    assert default["overall"]["set_accuracy"] == 33.33
    assert default["overall"]["invalid_rate"] == 33.33
    loose = json.loads(run_score(path, "--annotations", annotations, "--json",
                                 "--threshold", "2").stdout)
    # tr=2: pair 2 image 1 (5 vs 3) becomes A, so pair 2 is (A, B): both wrong but valid and not confused
    assert loose["overall"]["invalid_rate"] == 16.67
    assert loose["overall"]["valid_pairs"] == 2 and loose["overall"]["confusion"] == 0.0
    strict = json.loads(run_score(path, "--annotations", annotations, "--json",
                                  "--threshold", "6").stdout)
    # tr=6: only 1:B (9 vs 1) and 3:A (10 vs 0) stay valid
    assert strict["overall"]["set_accuracy"] == 0.0 and strict["overall"]["invalid_rate"] == 66.67
    # the same choices written as JSON Lines give the same numbers
    same = {("1", 1): "A", ("1", 2): "B", ("2", 1): None, ("2", 2): "B", ("3", 1): "A", ("3", 2): None}
    jsonl = json.loads(run_score(write_jsonl(tmp_path / "same.jsonl", same), "--annotations",
                                 annotations, "--json").stdout)
    assert jsonl["overall"] == default["overall"] and jsonl["per_category"] == default["per_category"]


def test_threshold_does_not_change_jsonl(annotations, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl")
    a = run_score(path, "--annotations", annotations, "--json", "--threshold", "9").stdout
    b = run_score(path, "--annotations", annotations, "--json").stdout
    assert json.loads(a) == json.loads(b)


def test_single_record_jsonl_is_not_mistaken_for_official(annotations, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"pair_id": "1", "image": 1, "choice": "A"}) + "\n")
    expect_one_line_error(run_score(path, "--annotations", annotations), "pair 1: image 2 has no prediction")


def test_partial_predictions_score_the_complete_pairs_with_a_note(annotations, tmp_path):
    two_pairs = {k: v for k, v in CHOICES.items() if k[0] != "3"}
    result = run_score(write_jsonl(tmp_path / "p.jsonl", two_pairs), "--annotations", annotations,
                       "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["n_pairs"] == 2
    assert "2 of 3 pairs have predictions" in result.stderr


def test_all_invalid_gives_strict_json(annotations, tmp_path):
    invalid = {k: None for k in CHOICES}
    result = run_score(write_jsonl(tmp_path / "p.jsonl", invalid), "--annotations", annotations,
                       "--json")
    assert result.returncode == 0
    out = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert out["ci"]["confusion"] == [None, None] and out["overall"]["invalid_rate"] == 100.0


def _jsonl(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    return path


GOOD = [json.dumps({"pair_id": p, "image": i, "choice": c}) for (p, i), c in CHOICES.items()]


@pytest.mark.parametrize("text,needles", [
    ("\n".join(GOOD[:2] + ['{"pair_id": "2", "image": 1, "choice": "A"'] + GOOD[3:]), ["line 3", "malformed JSON"]),
    ("\n".join(GOOD + [json.dumps({"pair_id": "99", "image": 1, "choice": "A"})]), ["line 7", "unknown pair id '99'"]),
    ("\n".join(GOOD + [GOOD[0]]), ["line 7", "pair 1 image 1 given twice"]),
    ("\n".join(GOOD[:-1]), ["pair 3: image 2 has no prediction"]),
    ("\n".join(GOOD[:1] + [json.dumps({"pair_id": "1", "image": 2, "choice": "C"})] + GOOD[2:]), ["line 2", "field 'choice'", "'C'"]),
    ("\n".join(GOOD[:1] + [json.dumps({"pair_id": "1", "image": 2, "choice": "a"})] + GOOD[2:]), ["line 2", "field 'choice'"]),
    ("\n".join(GOOD[:1] + [json.dumps({"pair_id": "1", "image": 3, "choice": "A"})] + GOOD[2:]), ["line 2", "field 'image' must be 1 or 2"]),
    ("\n".join(GOOD[:1] + [json.dumps({"pair_id": "1", "choice": "A"})] + GOOD[2:]), ["line 2", "missing field 'image'"]),
    ("\n".join(GOOD[:1] + [json.dumps({"pair_id": ["1"], "image": 2, "choice": "A"})] + GOOD[2:]), ["line 2", "field 'pair_id'"]),
    ("\n".join(GOOD[:1] + ["[1, 2]"] + GOOD[2:]), ["line 2", "expected an object"]),
    ("", ["no prediction records"]),
    ("\n\n", ["no prediction records"]),
])
def test_bad_jsonl_is_one_line_exit_2(annotations, tmp_path, text, needles):
    path = _jsonl(tmp_path, text)
    expect_one_line_error(run_score(path, "--annotations", annotations), str(path), *needles)


@pytest.mark.parametrize("results,needles", [
    ({"1": {"answer": {"im1": {"A": 10, "B": 0}}}}, ["pair 1", "answer.im2"]),
    ({"1": {"score": {}}}, ["pair 1", "missing field 'answer'"]),
    ({"1": {"answer": {"im1": {"A": "10", "B": 0}, "im2": {"A": 0, "B": 10}}}}, ["pair 1", "answer.im1.A"]),
    ({"1": {"answer": {"im1": {"B": 0}, "im2": {"A": 0, "B": 10}}}}, ["pair 1", "answer.im1.A"]),
    ({"77": {"answer": {"im1": {"A": 10, "B": 0}, "im2": {"A": 0, "B": 10}}}}, ["unknown pair id '77'"]),
])
def test_bad_official_results_are_one_line_exit_2(annotations, tmp_path, results, needles):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    expect_one_line_error(run_score(path, "--annotations", annotations), str(path), *needles)


def test_bad_files_and_arguments_are_one_line_exit_2(annotations, tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl")
    expect_one_line_error(run_score(tmp_path / "absent.jsonl", "--annotations", annotations),
                          "absent.jsonl", "no such file")
    expect_one_line_error(run_score(preds, "--annotations", tmp_path / "none.json"),
                          "none.json", "no such file")
    expect_one_line_error(run_score(tmp_path, "--annotations", annotations), "is a folder")
    bad_annotations = tmp_path / "bad_annotations.json"
    bad_annotations.write_text('{"1": {"question": "q"}}')
    expect_one_line_error(run_score(preds, "--annotations", bad_annotations),
                          "bad_annotations.json", "pair 1", "missing")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    expect_one_line_error(run_score(binary, "--annotations", annotations), "binary.jsonl")
    expect_one_line_error(run_score(preds), "--annotations")
    expect_one_line_error(run_score(preds, "--annotations", annotations, "--threshold", "three"),
                          "--threshold")
    expect_one_line_error(run_score(preds, "--annotations", annotations, "--threshold", "-1"),
                          "--threshold")
    expect_one_line_error(run_score(preds, "--annotations", annotations, "--resamples", "0"),
                          "--resamples")
    expect_one_line_error(run_score(preds, "--annotations", annotations, "--bogus"), "--bogus")


def test_help():
    result = run_score("--help")
    assert result.returncode == 0 and "--threshold" in result.stdout and "--annotations" in result.stdout
