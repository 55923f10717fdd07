"""Ready for a GPU: ``model.device_map`` (accelerate's placement), ``model.attn_implementation``,
the resolved dtype and placement in ``model_stats``, and a batch that runs out of memory
retried at half size — exercised on CPU with the real loading code."""

from __future__ import annotations

import pytest
import torch

from robustness.errors import ConfigError
from robustness.models.base import GenerateRequest, GenerationSettings, NextTokenRequest
from robustness.models.hf import HFAdapter
from tests.robustness.models.test_families import prompts

TOL = 1e-4


def adapter(path, batch_size: int = 4, **kw) -> HFAdapter:
    return HFAdapter(path, batch_size=batch_size, device="cpu", dtype="float32", **kw)


@pytest.mark.parametrize("kw,message", [
    ({"device_map": "everywhere"}, "model.device_map: 'everywhere' is not one of auto"),
    ({"attn_implementation": "fastest"}, "model.attn_implementation: 'fastest' is not one of"),
    ({"attn_implementation": "flash_attention_3"}, "needs the flash_attn_3 package"),
])
def test_placement_settings_are_checked_before_any_work(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        HFAdapter(tmp_path, **kw)


def test_device_map_auto_loads_through_accelerate_and_answers_the_same(tiny_llava):
    pytest.importorskip("accelerate")
    reqs = [NextTokenRequest(p, ("A", "B")) for p in prompts(4)]
    plain = adapter(tiny_llava).next_token_scores(reqs)
    mapped_adapter = adapter(tiny_llava, device_map="auto")
    mapped = mapped_adapter.next_token_scores(reqs)
    for a, b in zip(plain, mapped):
        assert a.logprobs["A"] == pytest.approx(b.logprobs["A"], abs=TOL)
    stats = mapped_adapter.stats()
    assert stats["device_map"] == ["cpu"] and stats["dtype"] == "float32"


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_attention_implementation_is_used_and_part_of_the_identity(tiny_llava, attention):
    ad = adapter(tiny_llava, attn_implementation=attention)
    [result] = ad.next_token_scores([NextTokenRequest(prompts(1)[0], ("A", "B"))])
    reference = adapter(tiny_llava).next_token_scores([NextTokenRequest(prompts(1)[0],
                                                                        ("A", "B"))])[0]
    assert result.logprobs["A"] == pytest.approx(reference.logprobs["A"], abs=TOL)
    assert ad.stats()["attn_implementation"] == attention
    assert ad.identity()["attn_implementation"] == attention
    assert "attn_implementation" not in adapter(tiny_llava).identity()  # old cache keys hold


def test_a_batch_out_of_memory_is_retried_at_half_size(tiny_llava, monkeypatch, caplog):
    reqs = [GenerateRequest(p, GenerationSettings(max_new_tokens=3)) for p in prompts(8)]
    expected = adapter(tiny_llava, 1).generate(reqs)
    ad = adapter(tiny_llava, 8)
    ad.generate(reqs[:2])  # stored prompts and features: dropped first when memory runs out
    real_forward_batch = ad._generate_batch
    sizes: list[int] = []

    def tight_memory(requests, texts):  # more than 2 requests do not fit
        sizes.append(len(requests))
        if len(requests) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward_batch(requests, texts)

    monkeypatch.setattr(ad, "_generate_batch", tight_memory)
    got = ad.generate(reqs)
    assert [r.text for r in got] == [r.text for r in expected]
    assert all(r.error is None for r in got)
    assert sizes == [8, 4, 2, 2, 4, 2, 2]  # halved, then halved again; nothing one by one
    assert ad.stats()["oom_splits"] == 3
    assert "retrying as 4 + 4 without the stored prompts and features" in caplog.text
