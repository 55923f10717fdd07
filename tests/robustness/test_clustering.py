"""Pairs that share an image are not independent: clusters, clustered CIs and tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

import robustness
from robustness.data.types import Pair, pair_clusters
from robustness.metrics import PairOutcome
from robustness.stats import bootstrap_cis, clustered_sign_flip, sign_flip_exact


def pair(pid: str, a: str, b: str) -> Pair:
    return Pair(pair_id=pid, question="q", options=("x", "y"), correct=("A", "B"),
                categories=(("C",), ("C",)), images=(a, b))  # type: ignore[arg-type]


def test_pairs_sharing_an_image_form_one_cluster():
    pairs = [pair("1", "a", "b"), pair("2", "c", "d"), pair("3", "b", "e"), pair("4", "e", "f")]
    assert pair_clusters(pairs) == [0, 1, 0, 0]  # 1-3 share b, 3-4 share e


def test_singleton_clusters_change_nothing():
    rng = np.random.default_rng(0)
    outcomes = [PairOutcome(correct=(bool(x), bool(y)), invalid=(False, False),
                            confused=bool(x) != bool(y) and False)
                for x, y in rng.integers(0, 2, (40, 2))]
    assert bootstrap_cis(outcomes, clusters=list(range(40))) == bootstrap_cis(outcomes)
    assert clustered_sign_flip([1, -1, 1, 1], [0, 1, 2, 3]) == sign_flip_exact([1, -1, 1, 1])
    assert clustered_sign_flip([1, 1, -1, 1], [0, 0, 1, 1]) == sign_flip_exact([2, 0])


def test_clustered_cis_on_the_real_annotations_are_wider(real_annotations, tmp_path):
    """A model's correctness that follows the image (as a deterministic model's does wherever
    the image is asked) makes pairs sharing an image move together: pair CIs are too narrow."""
    data = json.loads(real_annotations.read_text())
    rng = np.random.default_rng(3)
    right: dict[str, bool] = {}
    lines = []
    for pid, rec in data.items():
        for i in (1, 2):
            image = str(rec[f"im_{i}_local"])
            right.setdefault(image, bool(rng.random() < 0.7))
            truth = rec[f"im_{i}_correct"]
            lines.append(json.dumps({"pair_id": pid, "image": i, "choice": truth if right[image]
                                     else ("B" if truth == "A" else "A")}))
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    pairs = robustness.score(preds, real_annotations, uncertainty="pairs")
    clustered = robustness.score(preds, real_annotations)
    assert clustered["uncertainty"] == {"method": "clustered", "clusters": 60}
    assert pairs["uncertainty"] == {"method": "pairs", "clusters": 176}

    def width(out: dict, metric: str) -> float:
        lo, hi = out["ci"][metric]
        return hi - lo

    assert width(clustered, "set_accuracy") > width(pairs, "set_accuracy")
    assert width(clustered, "individual_accuracy") > width(pairs, "individual_accuracy")
    assert clustered["overall"] == pairs["overall"]  # the estimate is the same; only its spread


def test_the_gate_records_its_units(real_annotations, tmp_path):
    data = json.loads(real_annotations.read_text())
    lines = [json.dumps({"pair_id": pid, "image": i, "choice": rec[f"im_{i}_correct"]})
             for pid, rec in data.items() for i in (1, 2)]
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    verdict = robustness.gate.compare(preds, preds, annotations=real_annotations)
    assert verdict.as_dict()["uncertainty"] == {"method": "clustered", "clusters": 60}
    from robustness.gate.rules import rules_from_mapping

    plain = robustness.gate.compare(preds, preds, annotations=real_annotations,
                                    rules=rules_from_mapping({"uncertainty": "pairs"}))
    assert plain.as_dict()["uncertainty"] == {"method": "pairs", "clusters": 176}
    with pytest.raises(Exception, match="uncertainty"):
        rules_from_mapping({"uncertainty": "both"})
