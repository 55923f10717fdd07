"""One albumentations pipeline per probe level, reseeded per image, draws exactly what a fresh
``Compose(seed=...)`` per image would: purity kept, construction paid once."""

from __future__ import annotations

import numpy as np
import pytest

from attacks import corruptions
from attacks.corruptions import ImageCorruption, _albumentations

PROBES = [cls for cls in vars(corruptions).values() if isinstance(cls, type)
          and issubclass(cls, ImageCorruption) and cls is not ImageCorruption and cls.SEVERITIES]


@pytest.mark.parametrize("cls", PROBES, ids=lambda c: c.name)
def test_reused_pipeline_equals_a_fresh_one_per_image(cls):
    probe = cls()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 48), dtype=np.uint8),
              rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)]
    level = sorted(cls.SEVERITIES)[len(cls.SEVERITIES) // 2]
    order = [(0, 11), (1, 12), (0, 11), (1, 99), (0, 12)]  # repeats and interleaving
    reused = [probe.corrupt(images[i], level, seed) for i, seed in order]
    A = _albumentations()
    for (i, seed), got in zip(order, reused):
        fresh = A.Compose([probe.build(**cls.SEVERITIES[level])], seed=seed)(
            image=np.ascontiguousarray(images[i]))["image"]
        fresh = fresh[..., 0] if fresh.ndim == images[i].ndim + 1 else fresh
        np.testing.assert_array_equal(got, np.clip(np.rint(fresh), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(reused[0], reused[2])
