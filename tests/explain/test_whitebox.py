"""White-box attribution through the real Hugging Face adapter on tiny LLaVA and Qwen2-VL.

The tiny LLaVA's processor resizes (shortest edge 32, bicubic) and centre-crops (32×32), so
maps must come back in the original image's coordinates with the cropped-away pixels at zero.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from attacks.adversarial import FGSM
from robustness.testing.tiny_models import make_queries
from robustness.modes import mode_from_config
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.models.hf import HFAdapter
from robustness.data.query import FewShotExample
from tests.helpers.explain_support import FormulaAdapter

from explain.methods import IntegratedGradients, Occlusion
from explain.scoring import AnswerScorer
from explain.whitebox import AdapterGradientOracle, WhiteBoxScorer

torch.set_num_threads(2)



def smooth_image(h: int, w: int, seed: int = 0, rgb: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 128 + 70 * np.sin(xx / 5 + rng.uniform(0, 6)) * np.cos(yy / 6 + rng.uniform(0, 6))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.stack([img, 255 - img, img // 2], axis=-1) if rgb else img


def query_with(shape: tuple[int, int], seed: int = 0, rgb: bool = False, k: int = 0):
    q = make_queries(k + 1)[k]
    return replace(q, image=ImageInput(smooth_image(*shape, seed=seed, rgb=rgb)))


def adapter(path) -> HFAdapter:
    return HFAdapter(path, device="cpu", dtype="float32", batch_size=4)


@pytest.mark.parametrize("mode", [mode_from_config("gd"), mode_from_config("mc"), mode_from_config("ps")],
                         ids=["gd", "mc", "ps"])
def test_white_box_margin_is_the_adapters_score(tiny_llava, mode):
    """On images the processor does not resample (32 px short side: crop only) the float path
    gives the adapter's own pixel values, so the margins agree to float precision."""
    ad = adapter(tiny_llava)
    queries = [query_with((32, 48), seed=i, rgb=i % 2 == 1, k=i) for i in range(3)]
    targets = ["A", "B", "A"]
    expected = AnswerScorer(ad, mode).margins(queries, targets)
    scorer = WhiteBoxScorer(ad, mode)
    got = [float(scorer.function(q, t)(torch.tensor(q.image.pixels, dtype=torch.float32)[None])
                 [0].detach()) for q, t in zip(queries, targets)]
    np.testing.assert_allclose(got, expected, atol=2e-4)
    assert not np.allclose(expected, 0)


@pytest.mark.parametrize("mode", [mode_from_config("gd"), mode_from_config("ps")], ids=["gd", "ps"])
def test_qwen2_vl_margin_is_the_adapters_score(tiny_qwen, mode):
    ad = adapter(tiny_qwen)
    q = query_with((56, 56), rgb=True)  # Qwen2-VL's smart resize keeps 56×56: patches only
    expected = AnswerScorer(ad, mode).margins([q], ["A"])[0]
    f = WhiteBoxScorer(ad, mode).function(q, "A")
    got = float(f(torch.tensor(q.image.pixels, dtype=torch.float32)[None])[0].detach())
    assert got == pytest.approx(expected, abs=2e-4)


def test_few_shot_prompts_attribute_only_the_query_image(tiny_llava):
    """A few-shot prompt carries an example image too: it stays fixed, the map covers the
    query's own image, and the margin is still the adapter's."""
    ad, mode = adapter(tiny_llava), mode_from_config("gd")
    example = FewShotExample(image=ImageInput(smooth_image(32, 48, seed=9, rgb=True)),
                             question="is there a fracture", options=("yes", "no"), answer="B",
                             source_pair_id="another pair")
    q = replace(query_with((32, 48), seed=1), strategy="few_shot", few_shot=(example,))
    expected = AnswerScorer(ad, mode).margins([q], ["A"])[0]
    (m,) = IntegratedGradients(n_steps=8, internal_batch_size=8).attribute(ad, mode, [q], ["A"])
    assert m.map.shape == (32, 48) and m.score == pytest.approx(expected, abs=2e-4)


def test_integrated_gradients_is_complete_through_the_adapter(tiny_llava):
    """Σ attributions = f(input) − f(baseline) (IG's completeness), and f(input) is the real
    adapter's margin: the map explains the score the model gave."""
    ad, mode = adapter(tiny_llava), mode_from_config("gd")
    q = query_with((32, 48), seed=3)
    ig = IntegratedGradients(n_steps=48, internal_batch_size=16)
    (m,) = ig.attribute(ad, mode, [q], ["B"])
    assert m.attributions.shape == q.image.pixels.shape
    assert m.score == pytest.approx(AnswerScorer(ad, mode).margins([q], ["B"])[0], abs=2e-4)
    change = m.score - m.baseline_score
    assert abs(change) > 1e-2
    assert m.attributions.sum() == pytest.approx(change, rel=0.02, abs=2e-3)


@pytest.mark.parametrize("method", [IntegratedGradients(n_steps=8, internal_batch_size=4),
                                    Occlusion(window=8, stride=8, batch_size=32)],
                         ids=["integrated_gradients", "occlusion"])
def test_maps_are_in_original_coordinates_under_resize_and_crop(tiny_llava, method):
    """48×72 → resized to 32×48 → centre-cropped to 32×32: original columns left of ~9 and
    right of ~62 never reach the model, so their attribution is zero (IG: exactly; occlusion: up to
    the float noise of scoring in different batches); the rest is not."""
    ad, mode = adapter(tiny_llava), mode_from_config("gd")
    q = query_with((48, 72), seed=5, rgb=True)
    (m,) = method.attribute(ad, mode, [q], ["A"])
    assert m.attributions.shape == (48, 72, 3) and m.map.shape == (48, 72)
    outside = np.abs(np.concatenate([m.map[:, :8], m.map[:, 64:]], axis=1)).max()
    assert outside <= 1e-5 * np.abs(m.map).max()
    assert outside == 0 or isinstance(method, Occlusion)
    assert np.count_nonzero(m.map[:, 16:56]) > 0.5 * m.map[:, 16:56].size


def test_maps_follow_a_resizing_processor(tiny_qwen):
    """Qwen2-VL resizes 45×60 to its pixel budget: the map keeps the original 45×60 grid."""
    ad, mode = adapter(tiny_qwen), mode_from_config("gd")
    q = query_with((45, 60), seed=2)
    (m,) = IntegratedGradients(n_steps=8, internal_batch_size=8).attribute(ad, mode, [q], ["A"])
    assert m.map.shape == (45, 60)
    assert np.count_nonzero(m.map) > 0.9 * m.map.size


def test_occlusion_of_an_irrelevant_region_changes_nothing():
    """A model that reads only the top-left 16×16 block: every window elsewhere scores 0."""
    model = FormulaAdapter(lambda px, text: px[:16, :16].mean() / 50.0)
    q = query_with((48, 48), seed=1)
    (m,) = Occlusion(window=16, stride=16).attribute(model, mode_from_config("gd"), [q], ["A"])
    assert np.all(m.map[16:, :] == 0) and np.all(m.map[:, 16:] == 0)
    # occluding the block with black removes its whole contribution: each of its pixels
    # carries the margin drop of the one window covering it
    np.testing.assert_allclose(m.map[:16, :16], q.image.pixels[:16, :16].mean() / 50.0)


def test_integrated_gradients_needs_a_white_box_model():
    model = FormulaAdapter(lambda px, text: 0.0)
    with pytest.raises(ConfigError, match="explain=occlusion"):
        IntegratedGradients().check(model, mode_from_config("gd"))


def test_gradient_oracle_serves_the_adversarial_attacks(tiny_llava):
    """The oracle gives each query's right-answer margin and its gradient in the image's own
    shape (grey and RGB); the gradient matches finite differences and FGSM lowers the margin."""
    ad, mode = adapter(tiny_llava), mode_from_config("gd")
    queries = [query_with((32, 48), seed=7), query_with((32, 48), seed=8, rgb=True, k=1)]
    oracle = AdapterGradientOracle(ad, mode)
    images = [q.image.pixels.astype(np.float64) for q in queries]
    results = oracle(queries, images)
    clean = AnswerScorer(ad, mode).margins(queries, [q.correct for q in queries])
    f = WhiteBoxScorer(ad, mode)
    for q, img, (margin, grad), expected in zip(queries, images, results, clean):
        assert grad.shape == img.shape and margin == pytest.approx(expected, abs=2e-4)
        direction = np.random.default_rng(0).standard_normal(img.shape)
        h = 0.25
        fn = f.function(q, q.correct)
        plus, minus = (float(fn(torch.as_tensor(img + s * h * direction, dtype=torch.float32)[None])
                             [0].detach()) for s in (1, -1))
        assert (plus - minus) / (2 * h) == pytest.approx(float((grad * direction).sum()),
                                                         rel=0.05, abs=1e-4)
    adversarial = FGSM(eps=2).attack(queries, oracle, 2, seeds=[0, 1],
                                     labels=[q.correct for q in queries])
    attacked = AnswerScorer(ad, mode).margins(
        [replace(q, image=ImageInput(a)) for q, a in zip(queries, adversarial)],
        [q.correct for q in queries])
    assert np.all(attacked < clean)


def test_integrated_gradients_raises_its_steps_until_complete(tiny_llava):
    """A map missing completeness by more than the tolerance is redone with twice the steps;
    one still missing at ``max_steps`` is flagged, never silently kept."""
    ad, mode = adapter(tiny_llava), mode_from_config("gd")
    q = query_with((32, 48), seed=3)
    (coarse,) = IntegratedGradients(n_steps=1, max_steps=1).attribute(ad, mode, [q], ["B"])
    assert coarse.n_steps == 1 and coarse.relative_completeness_gap > 0.05 and coarse.flagged
    ig = IntegratedGradients(n_steps=1, max_steps=64, completeness_tolerance=0.05)
    (m,) = ig.attribute(ad, mode, [q], ["B"])
    assert m.n_steps > 1 and not m.flagged and m.relative_completeness_gap <= 0.05
    with pytest.raises(ConfigError, match="max_steps"):
        IntegratedGradients(n_steps=16, max_steps=8)
    with pytest.raises(ConfigError, match="completeness_tolerance"):
        IntegratedGradients(completeness_tolerance=0)
