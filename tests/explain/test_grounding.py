"""Grounding scores on known maps and masks, and reading phantom masks."""

from __future__ import annotations

import numpy as np
import pytest

from explain.grounding import (finding, mask_energy_ratio, pointing_hit, rank, spearman)
from explain.images import baseline_image, gaussian_blur, pool, resize_nearest
from robustness.errors import ConfigError
from tests.helpers.explain_support import phantom_benchmark


def square_mask(size: int = 64, top: int = 10, left: int = 20, side: int = 8) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_energy_ratio_is_one_for_uniform_and_inverse_share_when_all_inside():
    mask = square_mask()
    assert mask_energy_ratio(np.ones((64, 64)), mask) == pytest.approx(1.0)
    inside = np.where(mask, 2.0, 0.0)
    assert mask_energy_ratio(inside, mask) == pytest.approx(64 * 64 / mask.sum())
    half = np.where(mask, 1.0, 0.0) + np.where(~mask, 1.0 * mask.sum() / (~mask).sum(), 0.0)
    assert mask_energy_ratio(half, mask) == pytest.approx(0.5 * 64 * 64 / mask.sum())


def test_sign_choice_absolute_or_positive():
    mask = square_mask()
    attribution = np.where(mask, -3.0, 0.0)
    attribution[40, 40] = 1.0  # the only positive evidence lies outside the mask
    assert mask_energy_ratio(attribution, mask, "absolute") > 50
    assert mask_energy_ratio(attribution, mask, "positive") == 0.0
    with pytest.raises(ConfigError):
        mask_energy_ratio(attribution, mask, "signed")


def test_empty_mask_or_map_is_not_scored():
    assert mask_energy_ratio(np.ones((8, 8)), np.zeros((8, 8), bool)) is None
    assert mask_energy_ratio(np.zeros((8, 8)), np.ones((8, 8), bool)) is None
    assert pointing_hit(np.ones((8, 8)), np.zeros((8, 8), bool)) is None


def test_pointing_game_hits_misses_and_tolerance():
    mask = square_mask()  # rows 10..17, cols 20..27
    on = np.zeros((64, 64))
    on[13, 23] = 5.0
    assert pointing_hit(on, mask, smooth=0.0, tolerance=0.0) is True
    near = np.zeros((64, 64))
    near[13, 30] = 5.0  # 3 px right of the mask
    assert pointing_hit(near, mask, smooth=0.0, tolerance=0.0) is False
    assert pointing_hit(near, mask, smooth=0.0, tolerance=3 / 64) is True
    far = np.zeros((64, 64))
    far[50, 50] = 5.0
    assert pointing_hit(far, mask, smooth=0.02, tolerance=0.05) is False


def test_smoothing_lets_mass_beat_a_single_noisy_pixel():
    mask = square_mask()
    noisy = np.where(mask, 1.0, 0.0)
    noisy[50, 50] = 4.0  # one strong pixel outside versus a broad patch inside
    assert pointing_hit(noisy, mask, smooth=0.0, tolerance=0.0) is False
    assert pointing_hit(noisy, mask, smooth=0.05, tolerance=0.0) is True


def test_spearman_rank_correlation():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, a ** 3 + 7) == pytest.approx(1.0)  # ranks only
    assert abs(spearman(a, rng.random((32, 32)))) < 0.2
    assert spearman(a, np.ones((32, 32))) is None
    big = np.kron(a, np.ones((2, 2)))  # other sizes are compared on the first map's grid
    assert spearman(a, big, grid=32) == pytest.approx(1.0)
    np.testing.assert_allclose(rank(np.array([3.0, 1.0, 3.0, 2.0])), [2.5, 0.0, 2.5, 1.0])


def test_image_helpers():
    img = np.zeros((20, 30))
    img[10, 15] = 1.0
    blurred = gaussian_blur(img, 2.0)
    assert blurred.sum() == pytest.approx(1.0, rel=1e-6) and blurred.argmax() == img.argmax()
    assert pool(np.arange(16.0).reshape(4, 4), 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    np.testing.assert_array_equal(resize_nearest(np.eye(2), (4, 4)),
                                  np.kron(np.eye(2), np.ones((2, 2))))
    pixels = np.full((6, 6, 3), 100, np.uint8)
    assert baseline_image(pixels, "black").max() == 0
    assert baseline_image(pixels, "mean").min() == 100
    assert baseline_image(pixels, "blur").shape == (6, 6, 3)
    with pytest.raises(ConfigError):
        baseline_image(pixels, "white")


def test_phantom_findings_and_masks(tmp_path):
    bench = phantom_benchmark(tmp_path / "ph", pairs=4, size=64)
    seen_abnormal = 0
    for pair in bench:
        for image in (1, 2):
            truth = finding(bench, pair, image)
            meta = pair.extra["phantom"][f"im_{image}"]
            assert truth is not None and truth.family == meta["family"]
            assert truth.present == meta["present"]
            assert truth.mask is not None and truth.mask.shape == (64, 64)
            assert truth.mask.sum() == meta["area_px"]
            seen_abnormal += truth.abnormal
    assert seen_abnormal >= 4  # every pair has at least one image with its finding


def test_real_benchmark_pairs_have_no_ground_truth(tmp_path):
    from dataclasses import replace
    from types import MappingProxyType

    bench = phantom_benchmark(tmp_path / "ph", pairs=1, size=64)
    plain = replace(bench.pairs[0], extra=MappingProxyType({}))
    assert finding(bench, plain, 1) is None
