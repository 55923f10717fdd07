"""Shared fixtures: paths to the real annotations (skip when absent) and a tiny benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "mediconfusion"


@pytest.fixture
def real_annotations() -> Path:
    """``../shared/mediconfusion/dataset.json``; the test is skipped where it is absent."""
    path = SHARED / "dataset.json"
    if not path.is_file():
        pytest.skip("../shared/mediconfusion is not present")
    return path


@pytest.fixture
def real_statistics() -> dict[str, int]:
    path = SHARED / "statistics.json"
    if not path.is_file():
        pytest.skip("../shared/mediconfusion is not present")
    return json.loads(path.read_text())


def make_pair_record(correct1: str = "A", correct2: str = "B", cats1=("Cerebral",),
                     cats2=("Cerebral",), local1: int = 1, local2: int = 2) -> dict:
    """One pair in the official schema."""
    return {
        "im_1": f"train/radiology/images/ROCO_{local1}.jpg",
        "im_2": f"train/radiology/images/ROCO_{local2}.jpg",
        "im_1_local": local1, "im_2_local": local2,
        "cap_1": "caption one", "cap_2": "caption two",
        "category_1": list(cats1), "category_2": list(cats2),
        "BiomedCLIP_sim": 0.9, "DINO_sim": 0.5,
        "question": "Is there a lesion?", "option_A": "Yes", "option_B": "No",
        "im_1_correct": correct1, "im_2_correct": correct2,
        "AI_question": "Is a lesion present?", "AI_option_A": "Present", "AI_option_B": "Absent",
    }


@pytest.fixture
def write_dataset(tmp_path):
    """Write a dict of pair records as dataset.json and return its path."""

    def _write(records: dict, name: str = "dataset.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(records))
        return path

    return _write
