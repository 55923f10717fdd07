"""Scoring faithful to the official MediConfusion code, checked on hand-computed cases."""

from __future__ import annotations

import pytest

from robustness.data.mediconfusion import load_benchmark
from robustness.metrics import score_pairs, threshold_choice
from robustness.stats import bootstrap_cis, mcnemar_exact, paired_bootstrap_diff_ci
from tests.helpers.records import make_pair_record


def _bench(write_dataset):
    records = {
        "1": make_pair_record("A", "B", ("Cerebral",), ("Cerebral", "Vascular"), 1, 2),
        "2": make_pair_record("B", "A", ("Spinal",), ("Spinal",), 3, 4),
        "3": make_pair_record("A", "B", ("Vascular",), ("Cardiac",), 5, 6),
        "4": make_pair_record("B", "A", ("Cerebral",), ("Cerebral",), 7, 8),
    }
    return load_benchmark(write_dataset(records))


def test_hand_computed_overall_and_categories(write_dataset):
    bench = _bench(write_dataset)
    choices = {
        ("1", 1): "A", ("1", 2): "B",  # both right
        ("2", 1): "A", ("2", 2): "A",  # confused (one right)
        ("3", 1): "A", ("3", 2): None,  # one invalid
        ("4", 1): "B", ("4", 2): "B",  # confused
    }
    rep = score_pairs(bench, choices)
    o = rep.overall
    assert o.set_accuracy == pytest.approx(25.0)
    assert o.individual_accuracy == pytest.approx(100 * 5 / 8)
    assert o.invalid_rate == pytest.approx(100 * 1 / 8)
    assert o.valid_pairs == 3
    assert o.confusion == pytest.approx(100 * 2 / 3)
    assert o.precision == pytest.approx(100.0)  # 1 right of 1 valid unconfused
    # Cerebral occurs in pair 1 (im1, im2) and pair 4 (im1, im2) -> 4 occurrences
    cer = rep.per_category["Cerebral"]
    assert cer.n == 4
    assert cer.set_accuracy == pytest.approx(100 * 2 / 4)  # pair 1 counts twice
    assert cer.individual_accuracy == pytest.approx(100 * 3 / 4)  # p1 im1, p1 im2, p4 im1
    assert cer.valid_pairs == 4 and cer.confusion == pytest.approx(50.0)
    assert cer.precision == pytest.approx(100.0)
    vas = rep.per_category["Vascular"]  # pair 1 im2 and pair 3 im1 -> 2 occurrences
    assert vas.n == 2 and vas.valid_pairs == 1
    assert vas.set_accuracy == pytest.approx(50.0)
    assert vas.individual_accuracy == pytest.approx(100.0)
    assert vas.invalid_rate == 0.0
    card = rep.per_category["Cardiac"]  # pair 3 im2, invalid
    assert card.invalid_rate == pytest.approx(100.0) and card.valid_pairs == 0
    assert list(rep.per_category) == ["Cerebral", "Vascular", "Spinal", "Cardiac"]


def test_threshold_rule():
    assert threshold_choice(10, 0) == "A"
    assert threshold_choice(3, 6) == "B"
    assert threshold_choice(5, 7) is None
    assert threshold_choice(5, 7, threshold=2) == "B"
    assert threshold_choice(0, 0) is None


def test_all_a_and_oracle_on_real_annotations(real_annotations, real_statistics):
    bench = load_benchmark(real_annotations)
    assert len(bench) == 176
    assert bench.category_counts == real_statistics
    all_a = {(p.pair_id, i): "A" for p in bench for i in (1, 2)}
    rep = score_pairs(bench, all_a)
    assert rep.overall.set_accuracy == 0.0 and rep.overall.confusion == 100.0
    oracle = {(p.pair_id, i + 1): p.correct[i] for p in bench for i in range(2)}
    rep = score_pairs(bench, oracle)
    assert rep.overall.set_accuracy == 100.0 and rep.overall.confusion == 0.0
    assert all(m.set_accuracy == pytest.approx(100.0) for m in rep.per_category.values())
    assert {c: m.n for c, m in rep.per_category.items()} == real_statistics


def test_bootstrap_is_seeded_and_brackets_estimate(write_dataset):
    bench = _bench(write_dataset)
    choices = {(p.pair_id, i + 1): p.correct[i] for p in bench for i in range(2)}
    choices[("2", 1)] = "A"
    rep = score_pairs(bench, choices)
    outs = list(rep.outcomes.values())
    a = bootstrap_cis(outs, seed=1)
    assert a == bootstrap_cis(outs, seed=1)
    lo, hi = a["set_accuracy"]
    assert lo <= rep.overall.set_accuracy <= hi


def test_mcnemar_exact_known_values():
    # 10 discordant pairs all favouring b: p = 2 * 0.5**10
    a = [False] * 10 + [True] * 5
    b = [True] * 10 + [True] * 5
    assert mcnemar_exact(a, b) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact([True, False], [True, False]) == 1.0
    # 3 vs 1 discordant: p = 2 * (1 + 4) / 16 = 0.625
    assert mcnemar_exact([1, 1, 1, 0], [0, 0, 0, 1]) == pytest.approx(0.625)


def test_paired_bootstrap_ci_of_a_constant_shift():
    a = [1, 0] * 50
    b = [1, 1] * 50
    lo, hi = paired_bootstrap_diff_ci(a, b, seed=0)
    assert 30 <= lo <= 50 <= hi <= 70
