"""Shapley shares of image, question and options on black-box models with a known score."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robustness.modes import mode_from_config
from robustness.data.image import ImageInput
from robustness.data.query import Query
from tests.helpers.explain_support import FormulaAdapter

from explain.parts import PartShapley, mean_shares


def query(question: str = "is there a nodule?", options=("left lung", "right lung")) -> Query:
    pixels = np.full((16, 16), 200, np.uint8)
    return Query(pair_id="p1", image_index=1, image=ImageInput(pixels), question=question,
                 options=options)


def additive(px: np.ndarray, text: str) -> float:
    """3 for a bright image, 1 for a question mentioning a nodule, 0.5 for 'left' in the text."""
    return 3.0 * (px.mean() > 100) + 1.0 * ("nodule" in text) + 0.5 * ("left" in text)


def test_shapley_values_recover_an_additive_score():
    model = FormulaAdapter(additive)
    (parts,) = PartShapley().attribute(model, mode_from_config("gd"), [query()], ["A"])
    assert parts.values == pytest.approx({"image": 3.0, "question": 1.0, "option_A": 0.5,
                                          "option_B": 0.0})
    assert parts.full == pytest.approx(4.5) and parts.empty == pytest.approx(0.0)
    assert sum(parts.values.values()) == pytest.approx(parts.full - parts.empty)  # efficiency
    assert parts.shares == pytest.approx({"image": 66.667, "question": 22.222,
                                          "option_A": 11.111, "option_B": 0.0}, abs=1e-3)
    assert parts.image_reliance == pytest.approx(66.667, abs=1e-3)
    assert model.requests == 16  # every coalition scored once, in one call


def test_interactions_are_split_fairly():
    """Score 2 only when the image AND the question are present: each part gets 1."""
    model = FormulaAdapter(lambda px, text: 2.0 * ((px.mean() > 100) and "nodule" in text))
    (parts,) = PartShapley().attribute(model, mode_from_config("gd"), [query()], ["A"])
    assert parts.values["image"] == pytest.approx(1.0)
    assert parts.values["question"] == pytest.approx(1.0)


def test_target_b_flips_the_sign_and_ps_has_no_option_parts():
    model = FormulaAdapter(additive)
    q2 = replace(query(), image_index=2)
    a, b = PartShapley().attribute(model, mode_from_config("gd"), [query(), q2], ["A", "B"])
    assert b.values["image"] == pytest.approx(-a.values["image"])
    assert a.shares == b.shares
    (ps,) = PartShapley().attribute(model, mode_from_config("ps", normalize="sum"), [query()], ["A"])
    assert set(ps.values) == {"image", "question"}  # PS scores the options, they are no input
    assert mean_shares([a, ps])["image"] == pytest.approx((a.shares["image"] +
                                                           ps.shares["image"]) / 2)


def test_a_model_blind_to_the_image_has_no_image_reliance():
    model = FormulaAdapter(lambda px, text: 1.0 * ("nodule" in text))
    (parts,) = PartShapley().attribute(model, mode_from_config("gd"), [query()], ["A"])
    assert parts.image_reliance == 0.0 and parts.shares["question"] == pytest.approx(100.0)


def test_a_kept_table_gives_its_values_back_without_captum(tmp_path, monkeypatch):
    import explain.parts as parts_module
    from explain.parts import ShapleyRecord

    record = ShapleyRecord(tmp_path / "shapley.json")
    (first,) = PartShapley(record=record).attribute(FormulaAdapter(additive),
                                                    mode_from_config("gd"), [query()], ["A"])
    record.save()

    def no_captum(*args):
        raise AssertionError("captum called for a kept table")

    monkeypatch.setattr(parts_module, "exact_shapley", no_captum)
    (again,) = PartShapley(record=ShapleyRecord(tmp_path / "shapley.json")).attribute(
        FormulaAdapter(additive), mode_from_config("gd"), [query()], ["A"])
    assert again.values == first.values and again.shares == first.shares
    with pytest.raises(AssertionError, match="kept table"):  # another table is computed
        PartShapley(record=ShapleyRecord(tmp_path / "shapley.json")).attribute(
            FormulaAdapter(lambda px, text: 2.0 * ("nodule" in text)), mode_from_config("gd"),
            [query()], ["A"])
