"""One albumentations pipeline per probe level, reseeded per image, draws exactly what a fresh
``Compose(seed=...)`` per image would: purity kept, construction paid once."""

from __future__ import annotations

import json

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


def test_a_recorded_corruption_is_deferred_until_its_pixels_are_needed(tmp_path):
    """A rerun knows each corrupted image's digest from the record the first run saved: the
    image is deferred (no pixels computed), equal once computed, and a record that no longer
    reproduces its pixels is one clear error naming the file."""
    from attacks.base import Condition, ProbeContext
    from attacks.corruptions import GaussianNoise
    from robustness.data.derived import DerivedDigests
    from robustness.data.image import DeferredImage, ImageInput
    from robustness.data.query import clean_queries
    from robustness.data.types import Benchmark, Pair
    from robustness.errors import UserError

    pair = Pair(pair_id="p1", question="Which side?", options=("left", "right"),
                correct=("A", "B"), categories=(("Cerebral",), ("Cerebral",)))
    rng = np.random.default_rng(3)
    images = tuple(ImageInput(rng.integers(0, 256, (32, 32), dtype=np.uint8)) for _ in range(2))
    probe, record = GaussianNoise(severities=3), tmp_path / "derived" / "corruptions.json"
    condition = Condition(name="gaussian_noise@3", probe="gaussian_noise",
                          params={"severity": 3, "target": "both", "std": 0.10})

    def apply(derived):
        ctx = ProbeContext(benchmark=Benchmark(name="t", pairs=(pair,)), seed=0, derived=derived)
        return probe.apply(condition, pair, clean_queries(pair, images), ctx)

    first_store = DerivedDigests(record)
    first = apply(first_store)
    assert not any(isinstance(q.image, DeferredImage) for q in first)
    first_store.save()
    again = apply(DerivedDigests(record))
    assert all(isinstance(q.image, DeferredImage) and "pixels" not in vars(q.image)
               for q in again)
    assert [q.image.digest for q in again] == [q.image.digest for q in first]
    np.testing.assert_array_equal(again[0].image.pixels, first[0].image.pixels)
    assert apply(None)[1].image.digest == first[1].image.digest  # no record: computed as before

    stale = {k: "0" * 64 for k in json.loads(record.read_text())}
    record.write_text(json.dumps(stale))
    deferred = apply(DerivedDigests(record))[0].image
    with pytest.raises(UserError, match="corruptions.json: a recorded corruption no longer"):
        deferred.pixels


def test_the_record_survives_a_broken_file_and_a_concurrent_writer(tmp_path):
    from robustness.data.derived import DerivedDigests

    path = tmp_path / "corruptions.json"
    path.write_text("{not json")
    mine = DerivedDigests(path)
    assert mine.get("a") is None
    mine.put("a", "1")
    path.write_text(json.dumps({"b": "2"}))  # another job saved meanwhile
    mine.save()
    assert json.loads(path.read_text()) == {"a": "1", "b": "2"}
    assert DerivedDigests(path).get("b") == "2"
