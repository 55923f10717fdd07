"""The Hugging Face adapter on tiny LLaVA, Qwen2-VL and Idefics3 checkpoints loaded by path."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.paths import ROOT
from robustness.errors import ConfigError
from robustness.models import hf
from robustness.models.base import (Capability, GenerateRequest, GenerationSettings,
                                    LoglikelihoodRequest, NextTokenRequest, Prompt, text_message)
from robustness.models.hf import HFAdapter
from robustness.testing.tiny_models import make_images, make_queries


TOL = 1e-4


def prompts(n: int, system: str | None = None) -> list[Prompt]:
    out = []
    for q in make_queries(n):
        messages = [text_message("system", system)] if system else []
        messages.append(text_message("user", f"{q.question} A: {q.options[0]} B: {q.options[1]}",
                                     with_image=True))
        out.append(Prompt(messages=tuple(messages), images=(q.image,)))
    return out


def adapter(path, batch_size: int = 1, **kw) -> HFAdapter:
    return HFAdapter(path, batch_size=batch_size, device="cpu", dtype="float32", **kw)


# ----------------------------------------------------------------------------- construction


def test_construction_is_lazy_and_validated(tmp_path):
    a = HFAdapter("some-org/not-downloaded", revision="abc123", dtype="bfloat16", batch_size=4)
    assert a._loaded is None and a.model_id == "some-org/not-downloaded"
    assert a.identity() == {"provider": "huggingface", "model_id": "some-org/not-downloaded",
                            "revision": "abc123", "dtype": "bfloat16", "device_type": "cpu",
                            "family": "auto"}
    assert a.capabilities == {Capability.GENERATE, Capability.NEXT_TOKEN_SCORES,
                              Capability.LOGLIKELIHOOD}
    for bad in ({"dtype": "float8"}, {"device": "tpu"}, {"batch_size": 0},
                {"family": "nonesuch"}, {"score_with": "magic"}):
        with pytest.raises(ConfigError):
            HFAdapter("x/y", **bad)


def test_local_files_only_fails_in_one_line_without_network(tmp_path):
    a = HFAdapter("some-org/surely-not-cached-model", local_files_only=True, device="cpu")
    with pytest.raises(ConfigError) as err:
        a.load()
    assert "surely-not-cached-model" in str(err.value) and "\n" not in str(err.value)
    missing = HFAdapter(tmp_path / "missing", local_files_only=True, device="cpu")
    with pytest.raises(ConfigError):
        missing.generate([GenerateRequest(prompts(1)[0])])


def test_loads_once_per_process_and_family_from_config(tiny_llava, tiny_qwen):
    a, b = adapter(tiny_llava, 1), adapter(tiny_llava, 4)
    assert a.prompt_family == "llava" and a._loaded is None  # read from config.json only
    assert a.load() is b.load()  # one registry entry per load key (batch size is not part)
    assert adapter(tiny_qwen).prompt_family == "qwen2_vl"
    assert a.load().model.training is False


def test_identity_fingerprints_local_weights(tmp_path, tiny_llava):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_llava, copy)
    fp = adapter(copy).identity()["weights"]
    assert fp == adapter(tiny_llava).identity()["weights"]
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert adapter(copy).identity()["weights"] != fp


# ----------------------------------------------------------------------------- batching


def test_generate_batched_equals_unbatched(tiny_model):
    reqs = [GenerateRequest(p, GenerationSettings(max_new_tokens=6)) for p in prompts(6)]
    one = adapter(tiny_model, 1).generate(reqs)
    many = adapter(tiny_model, 4).generate(reqs)
    assert [r.text for r in one] == [r.text for r in many]
    assert all(r.error is None and r.text for r in many)
    assert all(r.usage.input_tokens > 10 and 1 <= r.usage.output_tokens <= 6 for r in many)
    assert all(r.finish_reason in ("stop", "length") for r in many)


def test_next_token_scores_batched_equal_unbatched(tiny_model):
    reqs = [NextTokenRequest(p, ("A", "B")) for p in prompts(6)]
    one = adapter(tiny_model, 1).next_token_scores(reqs)
    many = adapter(tiny_model, 4).next_token_scores(reqs)
    for a, b in zip(one, many):
        assert a.logprobs.keys() == b.logprobs.keys() == {"A", "B"}
        for k in a.logprobs:
            assert a.logprobs[k] == pytest.approx(b.logprobs[k], abs=TOL)
            assert a.logprobs[k] < 0
    # the results differ between prompts (the image and text matter)
    assert len({round(r.logprobs["A"], 4) for r in many}) > 1


def test_loglikelihood_batched_equals_unbatched_on_both_paths(tiny_model):
    reqs = [LoglikelihoodRequest(p, q.options) for p, q in zip(prompts(6), make_queries(6))]
    runs = [adapter(tiny_model, bs, score_with=path).loglikelihood(reqs)
            for bs in (1, 4) for path in ("prefix_cache", "sequences")]
    for results in runs:
        assert all(r.error is None and len(r.scores) == 2 for r in results)
    reference = runs[0]
    for results in runs[1:]:
        for a, b in zip(reference, results):
            for x, y in zip(a.scores, b.scores):
                assert (x.n_tokens, x.n_chars) == (y.n_tokens, y.n_chars)
                assert x.logprob == pytest.approx(y.logprob, abs=TOL)


def test_results_come_back_in_request_order(tiny_llava):
    ps = prompts(5)
    reqs = [NextTokenRequest(p) for p in ps]
    together = adapter(tiny_llava, 3).next_token_scores(reqs)
    alone = [adapter(tiny_llava, 1).next_token_scores([r])[0] for r in reqs]
    for a, b in zip(together, alone):
        assert a.logprobs["B"] == pytest.approx(b.logprobs["B"], abs=TOL)


# ----------------------------------------------------------------------------- semantics


def test_letter_variants_are_merged_by_log_sum_exp(tiny_llava):
    a = adapter(tiny_llava)
    tok = a.load().tokenizer
    ids_a = a.candidate_token_ids("A")
    assert set(ids_a) == {tok.convert_tokens_to_ids(t) for t in ("A", "\u2581A", "\u0120A")}
    prompt = prompts(1)[0]
    merged = a.next_token_scores([NextTokenRequest(prompt, ("A", "B"))])[0].logprobs
    inputs = a.encode([a.render(prompt)], [prompt.images])
    with torch.no_grad():
        logits = a.load().model(**inputs).logits[0, -1]
    lp = torch.log_softmax(logits.float(), -1)
    expected = math.log(sum(math.exp(float(lp[i])) for i in ids_a))
    assert merged["A"] == pytest.approx(expected, abs=1e-5)
    assert merged["A"] > float(lp[tok.convert_tokens_to_ids("A")])  # more mass than one spelling


def test_loglikelihood_scores_only_the_answer_tokens(tiny_llava):
    a = adapter(tiny_llava)
    prompt = prompts(1)[0]
    res = a.loglikelihood([LoglikelihoodRequest(prompt, ("left lung", "no"))])[0]
    assert [s.n_tokens for s in res.scores] == [2, 1]
    assert [s.n_chars for s in res.scores] == [9, 2]
    # direct check: the full sequence's log-probability of the answer tokens
    text, answer = a.render_with_answer(prompt, "left lung")
    assert text.endswith("ASSISTANT:") and answer == " left lung"
    tok = a.load().tokenizer
    inputs = a.encode([text + answer], [prompt.images])
    with torch.no_grad():
        lp = torch.log_softmax(a.load().model(**inputs).logits[0].float(), -1)
    ids = inputs["input_ids"][0].tolist()
    answer_ids = tok.encode(" left lung", add_special_tokens=False)
    assert ids[-2:] == answer_ids
    expected = float(lp[-3, ids[-2]] + lp[-2, ids[-1]])
    assert res.scores[0].logprob == pytest.approx(expected, abs=1e-4)


def test_bad_continuation_fails_that_request_only(tiny_llava):
    p = prompts(2)
    res = adapter(tiny_llava, 2).loglikelihood([LoglikelihoodRequest(p[0], ("yes", "  ")),
                                                LoglikelihoodRequest(p[1], ("yes", "no"))])
    assert res[0].error == "bad_request" and res[0].scores == []
    assert res[1].error is None and len(res[1].scores) == 2


def test_rigged_model_generates_its_answer(rigged_llava):
    res = adapter(rigged_llava, 3).generate([GenerateRequest(p) for p in prompts(3)])
    assert [r.text for r in res] == ["B"] * 3
    assert all(r.finish_reason == "stop" and r.usage.output_tokens == 2 for r in res)


def test_image_limit_is_a_config_error(tiny_llava):
    a = adapter(tiny_llava, max_images=1)
    imgs = make_images(2)
    two = Prompt(messages=(text_message("user", "first", with_image=True),
                           text_message("assistant", "A"),
                           text_message("user", "second", with_image=True)), images=tuple(imgs))
    with pytest.raises(ConfigError, match="at most 1 image"):
        a.generate([GenerateRequest(two)])
    ok = adapter(tiny_llava).generate([GenerateRequest(two, GenerationSettings(max_new_tokens=2))])
    assert ok[0].error is None and ok[0].usage.input_tokens > 2 * 16  # both images' tokens


def test_system_turn_folds_into_user_turn_when_template_rejects_it(tiny_llava, monkeypatch):
    a = adapter(tiny_llava)
    p = prompts(1, system="You are an expert radiologist.")[0]
    assert a.render(p).startswith("SYSTEM: You are an expert radiologist.")
    processor = a.load().processor
    strict = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}"
              "{% endif %}" + processor.chat_template)
    monkeypatch.setattr(processor, "chat_template", strict)
    rendered = a.render(p)
    assert rendered.startswith("USER: <image>\nYou are an expert radiologist.\n\n")


def test_failing_batch_is_retried_per_request(tiny_llava, monkeypatch):
    a = adapter(tiny_llava, 4)
    real = a._next_token_batch

    def flaky(reqs, texts):
        if len(reqs) > 1 or "fracture" in texts[0]:
            raise RuntimeError("device fell over")
        return real(reqs, texts)

    monkeypatch.setattr(a, "_next_token_batch", flaky)
    res = a.next_token_scores([NextTokenRequest(p) for p in prompts(5)])
    assert [r.error for r in res] == [None, None, None, None, "model_error"]
    assert "device fell over" in res[4].error_detail
    assert all(r.logprobs for r in res[:4])


def test_close_forgets_the_model(tiny_llava):
    a = adapter(tiny_llava)
    a.load()
    assert a.load_key() in hf.loaded_models()
    a.close()
    assert a.load_key() not in hf.loaded_models() and a._loaded is None


def test_relative_local_paths_resolve_from_the_project_root(tmp_path, monkeypatch):
    root = ROOT
    monkeypatch.chdir(tmp_path)
    assert HFAdapter("conf/model").local_dir() == root / "conf" / "model"
    (tmp_path / "conf" / "model").mkdir(parents=True)
    assert HFAdapter("conf/model").local_dir() == tmp_path / "conf" / "model"  # cwd first
    assert HFAdapter("org/name").local_dir() is None


def test_encoded_spelling_reads_the_first_token_of_the_encoding(tiny_llava):
    """The official GD rule's letter score: the logit of tokenizer.encode(letter)[0] alone."""
    import torch

    from robustness.modes.gd import official_letter

    a = adapter(tiny_llava, 2)
    reqs = [NextTokenRequest(p, ("A", "B"), spelling="encoded") for p in prompts(3)]
    got = a.next_token_scores(reqs)
    loaded = a.load()
    for req, result in zip(reqs, got):
        inputs = a.encode([a.render(req.prompt)], [req.prompt.images])
        with torch.inference_mode():
            logits = loaded.model(**inputs).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for letter in ("A", "B"):
            token = loaded.tokenizer.encode(letter, add_special_tokens=False)[0]
            assert result.logprobs[letter] == pytest.approx(float(logprobs[token]), abs=1e-4)
    assert official_letter({"A": -1.0, "B": -1.0}) == "A"  # argmax over [A, B]: a tie is A
    assert official_letter({"A": -2.0, "B": -1.0}) == "B"
