"""Probe shifts against clean: deltas, flip rate, paired CI and McNemar, per category."""

from __future__ import annotations

from robustness.data.types import Pair
from robustness.metrics import score_pairs
from robustness.shifts import SHIFT_KEYS, compute_shifts


def make_pair(i: int, cat: str) -> Pair:
    return Pair(pair_id=str(i), question="q", options=("yes", "no"), correct=("A", "B"),
                categories=((cat,), (cat,)))


def test_shift_on_constructed_answers():
    pairs = [make_pair(i, "Cerebral" if i < 6 else "Vascular") for i in range(10)]
    clean = {(p.pair_id, im): ("A" if im == 1 else "B") for p in pairs for im in (1, 2)}
    probe = dict(clean)
    for i in range(4):  # four Cerebral pairs become confused: image 2 answered A
        probe[(str(i), 2)] = "A"
    rc, rp = score_pairs(pairs, clean), score_pairs(pairs, probe)
    overall, per_cat = compute_shifts(pairs, rc, rp, clean, probe, seed=0, resamples=500)
    assert set(overall) == set(SHIFT_KEYS)
    assert overall["set_accuracy"] == -40.0
    assert overall["individual_accuracy"] == -20.0
    assert overall["confusion"] == 40.0
    assert overall["flip_rate"] == 20.0  # 4 of 20 image answers changed
    assert overall["mcnemar_p"] == 0.125  # 4 discordant pairs, all one way: 2 * 0.5**4
    lo, hi = overall["set_accuracy_ci"]
    assert lo <= -40.0 <= hi and hi < 0
    assert per_cat["Cerebral"]["set_accuracy"] == round(-400 / 6, 2)
    assert per_cat["Vascular"]["set_accuracy"] == 0.0 and per_cat["Vascular"]["mcnemar_p"] == 1.0
    assert per_cat["Vascular"]["flip_rate"] == 0.0


def test_identical_answers_have_no_shift():
    pairs = [make_pair(i, "Spinal") for i in range(5)]
    choices = {(p.pair_id, im): "A" for p in pairs for im in (1, 2)}
    r = score_pairs(pairs, choices)
    overall, _ = compute_shifts(pairs, r, r, choices, choices, resamples=200)
    assert overall["set_accuracy"] == 0.0 and overall["flip_rate"] == 0.0
    assert overall["mcnemar_p"] == 1.0 and overall["set_accuracy_ci"] == [0.0, 0.0]


def test_a_category_row_describes_one_occurrence_weighted_quantity():
    """Per category the official table counts a pair once per occurrence of the category; the
    difference, its CI and its test must all describe that weighted quantity."""
    from robustness.stats import sign_flip_exact

    def pair(i: int, c1: tuple, c2: tuple) -> Pair:
        return Pair(pair_id=str(i), question="q", options=("yes", "no"), correct=("A", "B"),
                    categories=(c1, c2))

    twice, once = ("Cerebral",), ("Vascular",)
    pairs = [pair(i, twice, twice) for i in range(3)]  # Cerebral twice: weight 2
    pairs += [pair(i, twice, once) for i in range(3, 9)]  # Cerebral once: weight 1
    clean = {(p.pair_id, im): ("A" if im == 1 else "B") for p in pairs for im in (1, 2)}
    probe = dict(clean)
    for i in range(3):  # the three double-weight pairs break
        probe[(str(i), 2)] = "A"
    rc, rp = score_pairs(pairs, clean), score_pairs(pairs, probe)
    _, per_cat = compute_shifts(pairs, rc, rp, clean, probe, seed=0, resamples=2000)
    row = per_cat["Cerebral"]
    assert row["set_accuracy"] == round(-100 * 6 / 12, 2)  # weight 6 of 12 occurrences lost
    lo, hi = row["set_accuracy_ci"]
    assert lo <= -50.0 <= hi
    assert row["mcnemar_p"] == sign_flip_exact([-2, -2, -2]) == 0.25
