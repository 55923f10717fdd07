"""Saliency sanity checks: model randomisation, the model-free map, the pointing game's count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.methods import IntegratedGradients, Occlusion
from explain.run import SaliencyRun
from explain.sanity import (MIN_POINTING_IMAGES, model_free_map, pointing_summary, randomised,
                            wilson_interval)
from robustness.errors import ConfigError
from robustness.models.hf import HFAdapter
from robustness.modes import mode_from_config

CASCADE = {"decoder": ["language_model", "lm_head"], "projector": ["multi_modal_projector"],
           "vision_tower": ["vision_tower"]}


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_randomised_redraws_only_the_named_parts_and_restores_them(tiny_llava):
    model = HFAdapter(tiny_llava, device="cpu", dtype="float32").load().model
    before = _weights(model)
    with randomised(model, ["vision_tower"], seed=1) as count:
        during = model.state_dict()
        changed = {k for k, v in during.items() if not torch.equal(v, before[k])}
        assert count > 0 and changed
        assert all("vision_tower" in k for k in changed)
        # scale survives: a re-drawn weight matrix keeps its standard deviation
        name = next(k for k in sorted(changed) if k.endswith("weight") and before[k].dim() == 2)
        assert during[name].std().item() == pytest.approx(before[name].std().item(), rel=0.1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError, match="no module named cortex"):
        with randomised(model, ["cortex"]):
            pass


def test_restored_after_an_error_inside_the_block(tiny_llava):
    model = HFAdapter(tiny_llava, device="cpu", dtype="float32").load().model
    before = _weights(model)
    with pytest.raises(RuntimeError):
        with randomised(model, ["multi_modal_projector"]):
            raise RuntimeError("boom")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_model_free_map_is_the_difference_from_the_references():
    image = np.zeros((8, 8), np.uint8)
    image[2:4, 2:4] = 200
    refs = [np.zeros((8, 8), np.float32), np.full((8, 8), 20, np.float32)]
    m = model_free_map(image, refs)
    assert m.shape == (8, 8) and m[0, 0] == 10 and m[2, 2] == 190
    rgb = model_free_map(np.stack([image] * 3, -1), [np.zeros((8, 8, 3))])
    assert rgb.shape == (8, 8) and rgb[2, 2] == 600


def test_pointing_game_needs_ten_images_and_carries_a_wilson_interval():
    few = pointing_summary([True] * (MIN_POINTING_IMAGES - 1) + [None])
    assert few == {"pointing_game": None, "pointing_game_n": 9, "pointing_game_ci": None}
    out = pointing_summary([True] * 15 + [False] * 5)
    assert out["pointing_game"] == 75.0 and out["pointing_game_n"] == 20
    # statsmodels' proportion_confint(15, 20, method="wilson") = (0.53133, 0.88814)
    assert out["pointing_game_ci"] == pytest.approx([53.13, 88.81], abs=0.01)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 100.0


def test_sanity_needs_integrated_gradients_and_a_valid_cascade():
    with pytest.raises(ConfigError, match="integrated_gradients"):
        SaliencyRun(Occlusion(), sanity=True, sanity_cascade=CASCADE)
    with pytest.raises(ConfigError, match="sanity_cascade"):
        SaliencyRun(IntegratedGradients(), sanity=True, sanity_cascade={})
    with pytest.raises(ConfigError, match="sanity_cascade.decoder"):
        SaliencyRun(IntegratedGradients(), sanity=True, sanity_cascade={"decoder": "lm_head"})


def test_cascade_reexplains_the_same_images_with_the_model_restored(tiny_llava, tmp_path):
    from tests.helpers.explain_support import answer, phantom_benchmark, queries_of

    bench = phantom_benchmark(tmp_path / "set", pairs=4, size=64)
    queries = queries_of(bench)
    ad = HFAdapter(tiny_llava, device="cpu", dtype="float32", batch_size=4)
    model = ad.load().model
    before = _weights(model)
    run = SaliencyRun(IntegratedGradients(n_steps=4, internal_batch_size=8, baseline="black",
                                          max_steps=16),
                      pairs=2, select="first", parts=False, under_probes=False, overlays=False,
                      sanity=True, sanity_cascade=CASCADE, sanity_seed=3)
    answers = {k: answer(q, "A") for k, q in queries.items()}
    summary = run.explain(ad, mode_from_config("gd"), bench, queries, answers, None)
    cascade = summary["sanity"]["cascade"]
    assert [c["randomised"] for c in cascade] == [
        ["decoder"], ["decoder", "projector"], ["decoder", "projector", "vision_tower"]]
    assert all(set(c) >= {"randomised", "spearman", "mask_energy_ratio"} for c in cascade)
    # a randomised model's maps are not the real ones
    assert all(c["spearman"] is not None and c["spearman"] < 0.99 for c in cascade)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert summary["pointing_game"] is None and summary["pointing_game_n"] == summary["n_abnormal"]
    assert "mask_energy_gain" in summary and "model_free_mask_energy_ratio" in summary
    maps = summary["maps"]  # per map: its completeness gap and the steps it took
    assert len(maps) == 4 and all(m["n_steps"] in (4, 8, 16) for m in maps)
    assert all((m["relative_completeness_gap"] <= 0.05) != m["flagged"] for m in maps)
