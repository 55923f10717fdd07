"""The dataset baseline: which references it draws, that Integrated Gradients' map is the mean
of IG from each of them (expected gradients, through the real adapter), and that occlusion fills
a window with the same place in the references' mean image."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from robustness.modes import mode_from_config
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.models.hf import HFAdapter
from tests.helpers.explain_support import FormulaAdapter, phantom_benchmark
from tests.explain.test_whitebox import query_with, smooth_image

from explain.methods import IntegratedGradients, Occlusion
from explain.references import ReferencePool, fit_to, reference_group
from explain.whitebox import WhiteBoxScorer



@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return phantom_benchmark(tmp_path_factory.mktemp("refs") / "set", pairs=12, size=64)


def test_references_come_from_other_pairs_of_the_same_group(bench):
    pool = ReferencePool(bench)
    groups = Counter(reference_group(p) for p in bench.pairs)
    assert len(groups) > 1  # the set mixes modalities, so "same group" is a real constraint
    for pair in bench.pairs:
        candidates = pool.candidates(pair.pair_id)
        assert candidates and all(pid != pair.pair_id for pid, _ in candidates)
        if groups[reference_group(pair)] > 1:
            assert {reference_group(bench.pair(pid)) for pid, _ in candidates} == {
                reference_group(pair)}
        else:  # alone in its group: any other pair's images
            assert len(candidates) == 2 * (len(bench.pairs) - 1)


def test_draws_are_deterministic_sized_to_the_image_and_differ_per_image(bench):
    pair = max(bench.pairs, key=lambda p: len(ReferencePool(bench).candidates(p.pair_id)))
    first = ReferencePool(bench).draw(pair.pair_id, 1, 3, (40, 30, 3))
    again = ReferencePool(bench).draw(pair.pair_id, 1, 3, (40, 30, 3))
    other = ReferencePool(bench).draw(pair.pair_id, 2, 3, (40, 30, 3))
    assert all(a.shape == (40, 30, 3) and a.dtype == np.float32 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    many = ReferencePool(bench).draw(pair.pair_id, 1, 50, (64, 64))  # more than there are
    assert len(many) == 50 and many[0].shape == (64, 64)


def test_fit_to_converts_grey_and_colour():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert fit_to(grey, (3, 4, 3)).shape == (3, 4, 3)
    np.testing.assert_array_equal(fit_to(grey, (3, 4)), grey.astype(np.float32))
    assert fit_to(np.zeros((5, 5, 3), np.uint8), (10, 8)).shape == (10, 8)


class FixedPool:
    """References chosen by the test, so the expected map can be computed by hand."""

    def __init__(self, images):
        self.images = images

    def draw(self, pair_id, image_index, count, shape):
        return [np.asarray(img, dtype=np.float32).reshape(shape) for img in self.images[:count]]


def test_dataset_baseline_is_the_mean_of_ig_from_each_reference(tiny_llava):
    """Expected gradients through the real adapter: the map equals the mean of captum IG runs
    from each reference, and completeness holds against the references' mean score."""
    from captum.attr import IntegratedGradients as CaptumIG

    ad, mode = HFAdapter(tiny_llava, device="cpu", dtype="float32", batch_size=4), \
        mode_from_config("gd")
    q = query_with((32, 48), seed=3)
    refs = [smooth_image(32, 48, seed=s) for s in (5, 6, 7)]
    ig = IntegratedGradients(n_steps=64, internal_batch_size=32, baseline="dataset",
                             n_references=3)
    ig.use_references(FixedPool(refs))
    (m,) = ig.attribute(ad, mode, [q], ["B"])
    f = WhiteBoxScorer(ad, mode).function(q, "B")
    x = torch.tensor(q.image.pixels, dtype=torch.float32)[None]
    single = [CaptumIG(f).attribute(x, baselines=torch.tensor(r, dtype=torch.float32)[None],
                                    n_steps=64, method="gausslegendre")[0].detach().double()
              .numpy() for r in refs]
    np.testing.assert_allclose(m.attributions, np.mean(single, axis=0), rtol=1e-3, atol=1e-6)
    with torch.no_grad():
        ends = f(torch.tensor(np.stack([q.image.pixels, *refs]), dtype=torch.float32)).numpy()
    assert m.baseline_score == pytest.approx(float(ends[1:].mean()), abs=1e-4)
    change = m.score - m.baseline_score
    assert abs(change) > 1e-3
    assert m.attributions.sum() == pytest.approx(change, rel=0.03, abs=2e-3)
    assert ig.settings()["n_references"] == 3


def test_dataset_baseline_without_references_is_a_config_error(tiny_llava):
    ad = HFAdapter(tiny_llava, device="cpu", dtype="float32", batch_size=4)
    q = replace(query_with((32, 48)), image=ImageInput(smooth_image(32, 48)))
    with pytest.raises(ConfigError, match="dataset"):
        IntegratedGradients(baseline="dataset").attribute(ad, mode_from_config("gd"), [q], ["A"])
    with pytest.raises(ConfigError, match="n_references"):
        IntegratedGradients(baseline="dataset", n_references=0)


def test_occlusion_dataset_fill_is_the_references_mean_at_the_same_place():
    """A model that reads only the top-left 16×16 block: occluding it swaps in that block of the
    references' mean image, so each of its pixels carries exactly that margin change; windows
    elsewhere change nothing; the settings record the references."""
    model = FormulaAdapter(lambda px, text: px[:16, :16].mean() / 50.0)
    q = query_with((48, 48), seed=1)
    refs = [smooth_image(48, 48, seed=s) for s in (5, 6)]
    occ = Occlusion(window=16, stride=16, baseline="dataset", n_references=2)
    occ.use_references(FixedPool(refs))
    (m,) = occ.attribute(model, mode_from_config("gd"), [q], ["A"])
    fill = np.rint(np.mean(np.asarray(refs, dtype=np.float64), axis=0))
    expected = (q.image.pixels[:16, :16].astype(np.float64).mean() - fill[:16, :16].mean()) / 50
    assert abs(expected) > 0.05  # the references differ from the image there
    np.testing.assert_allclose(m.map[:16, :16], expected, rtol=1e-5)
    assert np.all(m.map[16:, :] == 0) and np.all(m.map[:, 16:] == 0)
    assert occ.settings()["baseline"] == "dataset" and occ.settings()["n_references"] == 2
    with pytest.raises(ConfigError, match="dataset"):
        Occlusion(baseline="dataset").attribute(model, mode_from_config("gd"), [q], ["A"])
