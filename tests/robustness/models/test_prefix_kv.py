"""The image-prefix store: slots end at the last image token and are keyed by tokens and
pixels, memory stays within its budget (first come, first kept), and a rebuilt batch continues
each prefix at its own positions."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from robustness.errors import ConfigError
from robustness.models.hf import HFAdapter
from robustness.models.prefix_kv import PrefixStore, continue_after, prefix_slots

IMAGE = 9


def batch():
    ids = torch.tensor([[0, 0, 5, IMAGE, IMAGE, 7, 8],
                        [5, IMAGE, IMAGE, 6, 7, 8, 1]])
    return ids, (ids != 0).long()


def cache_for(ids, layers=2, heads=2, dim=3):
    n, width = ids.shape
    return DynamicCache(ddp_cache_data=[(torch.randn(n, heads, width, dim),
                                         torch.randn(n, heads, width, dim))
                                        for _ in range(layers)])


def test_slots_end_at_the_last_image_token_and_key_tokens_with_pixels():
    ids, mask = batch()
    a = prefix_slots(ids, mask, IMAGE, [["px1"], ["px2"]])
    assert [(s.start, s.length) for s in a] == [(2, 3), (0, 3)]
    assert a[0].key != a[1].key  # the same tokens over other pixels
    same_tokens_other_pixels = prefix_slots(ids, mask, IMAGE, [["px2"], ["px2"]])
    assert same_tokens_other_pixels[0].key == same_tokens_other_pixels[1].key  # same ids, pixels
    assert a[0].key != same_tokens_other_pixels[0].key
    no_image = torch.tensor([[5, 6, 7]])
    assert prefix_slots(no_image, torch.ones_like(no_image), IMAGE, [["px"]]) is None
    ends_on_image = torch.tensor([[5, IMAGE]])
    assert prefix_slots(ends_on_image, torch.ones_like(ends_on_image), IMAGE, [["px"]]) is None


def test_the_store_keeps_what_came_first_within_its_budget():
    ids, mask = batch()
    slots = prefix_slots(ids, mask, IMAGE, [["px1"], ["px2"]])
    one_entry = 2 * 2 * (2 * 3 * 3) * 4  # layers x (k, v) x heads*length*dim floats
    store = PrefixStore(max_bytes=one_entry)
    store.record(cache_for(ids), slots, [0, 0])
    assert slots[0].key in store and slots[1].key not in store
    assert store.stats()["refused"] == 1 and not store.covers(slots)
    cache = cache_for(ids)
    big = PrefixStore(max_bytes=10 * one_entry)
    big.record(cache, slots, [0, 0])
    kept = big.get(slots[0].key).layers[0][0]
    assert torch.equal(kept, cache.layers[0].keys[0, :, 2:5])  # row 0's prefix, unpadded


def test_a_cache_that_kept_only_a_window_is_not_recorded():
    ids, mask = batch()
    slots = prefix_slots(ids, mask, IMAGE, [["px1"], ["px2"]])
    store = PrefixStore(max_bytes=1 << 20)
    store.record(cache_for(ids[:, :4]), slots, [0, 0])  # 4 positions: row 0 ends at 5
    assert not store.covers(slots) and store.stats()["refused"] == 2


def test_a_rebuilt_batch_right_aligns_prefixes_and_continues_their_positions():
    ids, mask = batch()
    slots = prefix_slots(ids, mask, IMAGE, [["px1"], ["px2"]])
    store = PrefixStore(max_bytes=1 << 20)
    store.record(cache_for(ids), slots, [0, 0])
    cont = continue_after(store, slots, {"input_ids": ids, "attention_mask": mask}, pad_id=0)
    assert cont.width == 3
    assert cont.input_ids.tolist() == [[5, IMAGE, IMAGE, 0, 0, 7, 8],
                                       [5, IMAGE, IMAGE, 6, 7, 8, 1]]
    assert cont.attention_mask.tolist() == [[1, 1, 1, 0, 0, 1, 1], [1] * 7]
    assert cont.position_ids[0].tolist()[-2:] == [3, 4]
    assert cont.position_ids[1].tolist() == list(range(7))
    assert cont.cache.get_seq_length() == 3 and store.stats()["reused"] == 2


@pytest.mark.parametrize("key", ["image_prefix_mb", "image_features_mb"])
@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_memory_budgets_are_whole_mib_or_refused_in_one_line(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}: must be a whole number of MiB"):
        HFAdapter("some/model", **{key: value})
