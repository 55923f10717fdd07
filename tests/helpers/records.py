"""Benchmark records in the official MediConfusion schema, for tests that write their own."""

from __future__ import annotations


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
