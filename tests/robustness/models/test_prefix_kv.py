"""The prompt store: slots end at the last image token and are keyed by tokens and pixels,
memory stays within its budget (first come, first kept), and a rebuilt batch continues from
the longest opening a row shares with the stored prompt, at that prompt's positions."""

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
    one_entry = 2 * 2 * (2 * 5 * 3) * 4  # layers x (k, v) x heads*tokens*dim floats (row 0)
    store = PrefixStore(max_bytes=one_entry)
    store.record(cache_for(ids), slots, ids)
    assert slots[0].key in store and slots[1].key not in store
    assert store.stats()["refused"] == 1 and not store.covers(slots)
    cache = cache_for(ids)
    big = PrefixStore(max_bytes=10 * one_entry)
    big.record(cache, slots, ids)
    kept = big.get(slots[0].key)
    assert torch.equal(kept.layers[0][0], cache.layers[0].keys[0, :, 2:])  # unpadded prompt
    assert kept.ids.tolist() == [5, IMAGE, IMAGE, 7, 8]


def test_a_cache_that_kept_only_a_window_is_not_recorded():
    ids, mask = batch()
    slots = prefix_slots(ids, mask, IMAGE, [["px1"], ["px2"]])
    store = PrefixStore(max_bytes=1 << 20)
    store.record(cache_for(ids[:, :4]), slots, ids)  # 4 of the prompts' 7 positions
    assert not store.covers(slots) and store.stats()["refused"] == 2


def test_a_rebuilt_batch_continues_from_the_longest_shared_opening():
    ids, mask = batch()
    slots = prefix_slots(ids, mask, IMAGE, [["px1"], ["px2"]])
    store = PrefixStore(max_bytes=1 << 20)
    store.record(cache_for(ids), slots, ids)
    later = torch.tensor([[0, 5, IMAGE, IMAGE, 7, 3, 3],   # shares 4 tokens with its stored row
                          [5, IMAGE, IMAGE, 6, 7, 8, 1]])  # identical: all but the last token
    later_mask = (later != 0).long()
    cont = continue_after(store, prefix_slots(later, later_mask, IMAGE, [["px1"], ["px2"]]),
                          {"input_ids": later, "attention_mask": later_mask}, pad_id=0)
    assert cont.width == 6
    assert cont.input_ids.tolist() == [[0, 0, 5, IMAGE, IMAGE, 7, 3, 3],
                                       [5, IMAGE, IMAGE, 6, 7, 8, 0, 1]]
    assert cont.attention_mask.tolist() == [[0, 0, 1, 1, 1, 1, 1, 1],
                                            [1, 1, 1, 1, 1, 1, 0, 1]]
    assert cont.position_ids[0].tolist()[2:] == [0, 1, 2, 3, 4, 5]
    assert cont.position_ids[1].tolist()[:6] + cont.position_ids[1].tolist()[-1:] == \
        [0, 1, 2, 3, 4, 5, 6]
    assert cont.cache.get_seq_length() == 6
    assert store.stats()["reused"] == 2 and store.stats()["reused_tokens"] == 4 + 6


@pytest.mark.parametrize("key", ["image_prefix_mb", "image_features_mb"])
@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_memory_budgets_are_whole_mib_or_refused_in_one_line(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}: must be a whole number of MiB"):
        HFAdapter("some/model", **{key: value})
