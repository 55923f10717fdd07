"""Results split by pair similarity: equal-count bins of each measure a benchmark has."""

from __future__ import annotations

import numpy as np

from robustness.data.image import ImageInput
from robustness.data.types import MediConfusionFields, Pair
from robustness.metrics import PairOutcome
from robustness.similarity import by_similarity, image_difference


def make(i: int, sim: float) -> Pair:
    return Pair(pair_id=str(i), question="q", options=("x", "y"), correct=("A", "B"),
                categories=(("C",), ("C",)),
                mediconfusion=MediConfusionFields(image_refs=(f"r{i}a", f"r{i}b"),
                                                  local_ids=(f"{i}a", f"{i}b"),
                                                  biomedclip_sim=sim, dino_sim=None))


def test_bins_split_pairs_by_similarity_and_score_each():
    pairs = [make(i, sim) for i, sim in enumerate([0.9, 0.1, 0.5, 0.8, 0.2, 0.6])]
    right = PairOutcome(correct=(True, True), invalid=(False, False), confused=False)
    confused = PairOutcome(correct=(True, False), invalid=(False, False), confused=True)
    outcomes = {p.pair_id: (confused if p.mediconfusion.biomedclip_sim > 0.7 else right)
                for p in pairs}
    pixels = {p.pair_id: (ImageInput(np.zeros((4, 4), np.uint8)),
                          ImageInput(np.full((4, 4), int(p.pair_id), np.uint8))) for p in pairs}
    out = by_similarity(pairs, outcomes, lambda p: pixels[p.pair_id])
    assert set(out) == {"BiomedCLIP_sim", "image_difference"}  # DINO_sim is absent here
    bins = out["BiomedCLIP_sim"]
    assert [b["pairs"] for b in bins] == [2, 2, 2]
    assert [b["range"] for b in bins] == [[0.1, 0.2], [0.5, 0.6], [0.8, 0.9]]
    assert [b["confusion"] for b in bins] == [0.0, 0.0, 100.0]  # the most alike pairs confuse
    assert [b["set_accuracy"] for b in bins] == [100.0, 100.0, 0.0]
    assert image_difference(pixels["5"]) == 5.0
