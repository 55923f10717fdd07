"""The content-keyed answer cache: keys, durability, truncated lines, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from robustness.data.image import ImageInput
from robustness.models.base import (GenerateRequest, GenerateResult, GenerationSettings, LoglikelihoodRequest, NextTokenRequest, Prompt, text_message)
from robustness.models.answer_store import AnswerStore
from robustness.models.cache import CachedAdapter, request_key
from tests.helpers.runner_scripted import ScriptedAdapter


def prompt(text: str = "Is there a nodule?", value: int = 0) -> Prompt:
    pixels = np.full((8, 8), value, dtype=np.uint8)
    return Prompt(messages=(text_message("user", text, with_image=True),),
                  images=(ImageInput(pixels),))


def gen_requests(n: int, offset: int = 0) -> list[GenerateRequest]:
    return [GenerateRequest(prompt(f"question {i}", value=i % 256)) for i in range(offset, offset + n)]


def test_second_call_and_new_process_are_served_from_disk(tmp_path):
    inner = ScriptedAdapter()
    cached = CachedAdapter(inner, tmp_path)
    first = cached.generate(gen_requests(6))
    assert inner.requests == 6 and cached.cache_stats.misses == 6 and cached.cache_stats.hits == 0
    again = cached.generate(gen_requests(6))
    assert inner.requests == 6 and cached.cache_stats.hits == 6
    assert [r.text for r in again] == [r.text for r in first]
    # a fresh wrapper (as in a new process) reads the file: nothing reaches the model
    fresh_inner = ScriptedAdapter()
    fresh = CachedAdapter(fresh_inner, tmp_path)
    third = fresh.generate(gen_requests(6))
    assert fresh_inner.requests == 0
    assert [(r.text, r.usage.input_tokens) for r in third] == \
           [(r.text, r.usage.input_tokens) for r in first]


def test_key_covers_everything_that_can_change_an_answer():
    ident = {"model_id": "m", "revision": "1"}
    base = request_key(ident, "generate", GenerateRequest(prompt()))
    assert base == request_key(dict(ident), "generate", GenerateRequest(prompt()))
    variants = [
        request_key({"model_id": "m", "revision": "2"}, "generate", GenerateRequest(prompt())),
        request_key(ident, "generate", GenerateRequest(prompt("other question"))),
        request_key(ident, "generate", GenerateRequest(prompt(value=1))),  # pixels after a probe
        request_key(ident, "generate",
                    GenerateRequest(prompt(), GenerationSettings(max_new_tokens=64))),
        request_key(ident, "next_token_scores", NextTokenRequest(prompt())),
        request_key(ident, "next_token_scores", NextTokenRequest(prompt(), ("B", "A"))),
        request_key(ident, "loglikelihood", LoglikelihoodRequest(prompt(), ("yes", "no"))),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_all_request_kinds_round_trip_exactly(tmp_path):
    inner = ScriptedAdapter()
    cached = CachedAdapter(inner, tmp_path)
    nt = [NextTokenRequest(prompt(f"q{i}")) for i in range(3)]
    ll = [LoglikelihoodRequest(prompt(f"q{i}"), ("a nodule", "no nodule")) for i in range(3)]
    nt1, ll1 = cached.next_token_scores(nt), cached.loglikelihood(ll)
    fresh = CachedAdapter(ScriptedAdapter(), tmp_path)
    assert fresh.next_token_scores(nt) == nt1
    assert fresh.loglikelihood(ll) == ll1
    assert fresh.inner.requests == 0


def test_duplicates_within_a_call_are_asked_once(tmp_path):
    inner = ScriptedAdapter()
    cached = CachedAdapter(inner, tmp_path)
    reqs = gen_requests(2) + gen_requests(2)
    out = cached.generate(reqs)
    assert inner.requests == 2
    assert [r.text for r in out[:2]] == [r.text for r in out[2:]]


class FlakyAdapter(ScriptedAdapter):
    def generate(self, requests):
        self._count(len(requests))
        return [GenerateResult(text=None, error="rate_limit") if i == 0 else
                GenerateResult(text=None, error="refusal") for i, _ in enumerate(requests)]


def test_transient_failures_are_asked_again_permanent_ones_are_kept(tmp_path):
    inner = FlakyAdapter()
    cached = CachedAdapter(inner, tmp_path)
    cached.generate(gen_requests(2))
    cached.generate(gen_requests(2))
    assert inner.requests == 3  # the rate-limited request is retried, the refusal is not


def test_truncated_last_line_is_skipped_and_sealed(tmp_path):
    cached = CachedAdapter(ScriptedAdapter(), tmp_path)
    cached.generate(gen_requests(3))
    path = cached.path
    good = path.read_bytes()
    # a run killed mid-write leaves half a record
    path.write_bytes(good + good.splitlines(keepends=True)[0][:40])
    reader = CachedAdapter(ScriptedAdapter(), tmp_path)
    assert len(reader.store) == 3
    reader.generate(gen_requests(2, offset=3))  # appends after sealing the partial line
    final = CachedAdapter(ScriptedAdapter(), tmp_path)
    assert len(final.store) == 5 and final.store.skipped_lines == 1
    assert final.inner.requests == 0 and len(final.generate(gen_requests(5))) == 5
    assert final.inner.requests == 0


def test_partial_line_of_a_writer_in_progress_is_read_later(tmp_path):
    path = tmp_path / "s.jsonl"
    store = AnswerStore(path)
    rec = json.dumps({"k": "abc", "kind": "generate", "r": {"text": "A"}})
    with open(path, "a") as fh:
        fh.write(rec[:10])
    assert store.refresh() == 0 and "abc" not in store
    with open(path, "a") as fh:
        fh.write(rec[10:] + "\n")
    assert store.refresh() == 1 and "abc" in store


def _writer(folder: str, offset: int) -> None:
    cached = CachedAdapter(ScriptedAdapter(), folder)
    for start in range(0, 40, 5):  # overlapping requests across processes, many small batches
        cached.generate(gen_requests(5, offset=offset + start))


def test_concurrent_processes_share_a_folder_without_corruption(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), off)) for off in (0, 20, 40)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    files = list(Path(tmp_path).glob("*.jsonl"))
    assert len(files) == 1
    lines = files[0].read_text().splitlines()
    assert all(json.loads(line)["k"] for line in lines)  # every line whole, none interleaved
    store = AnswerStore(files[0])
    assert len(store) == 80 and store.skipped_lines == 0
    reader = CachedAdapter(ScriptedAdapter(), tmp_path)
    reader.generate(gen_requests(80))
    assert reader.inner.requests == 0


def test_disabled_cache_always_asks(tmp_path):
    inner = ScriptedAdapter()
    cached = CachedAdapter(inner, tmp_path, enabled=False)
    cached.generate(gen_requests(2))
    cached.generate(gen_requests(2))
    assert inner.requests == 4 and not list(tmp_path.iterdir())


def test_attributes_pass_through_to_the_model(tmp_path):
    inner = ScriptedAdapter(name="x")
    inner.prices = {"input_per_million": 1.0, "output_per_million": 2.0}
    cached = CachedAdapter(inner, tmp_path)
    assert cached.prices == inner.prices and cached.model_id == "scripted/x"
    assert cached.identity() == inner.identity() and cached.capabilities == inner.capabilities
    with pytest.raises(AttributeError):
        cached.no_such_attribute
