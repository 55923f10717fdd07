"""API adapters driven through the real SDKs against the loopback fake server (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import threading
import time

import numpy as np
import pytest

from robustness.errors import ConfigError
from robustness.models.api import (AnthropicAdapter, AzureOpenAIAdapter, GeminiAdapter,
                                   OpenAIAdapter, OpenAICompatibleAdapter, VLLMAdapter)
from robustness.data.image import ImageInput
from robustness.models.base import (Capability, GenerateRequest, GenerationSettings, LoglikelihoodRequest, NextTokenRequest, Prompt, text_message)
from robustness.testing.fake_api import (REFUSAL_TEXT, fake_api_server, fake_token_logprob,
                                fake_tokenize, render_chat)

PLANTED = {
    "OPENAI_API_KEY": "sk-PLANTEDopenai0123456789abcdefXYZ",
    "AZURE_OPENAI_API_KEY": "PLANTEDazure0123456789abcdefXYZ",
    "ANTHROPIC_API_KEY": "sk-ant-PLANTEDanthropic0123456789XYZ",
    "GEMINI_API_KEY": "AIzaPLANTEDgemini0123456789abcdefXYZ",
    "VLLM_API_KEY": "PLANTEDvllm0123456789abcdefXYZ",
}
TRANSIENT_KINDS = ("rate_limit", "server_error", "timeout", "connection")
FAST = dict(initial_backoff_s=0.01, max_backoff_s=0.05, timeout_s=5.0, max_retries=3)
PROVIDERS = ["openai", "azure", "anthropic", "gemini", "vllm", "compatible"]


@pytest.fixture
def keys(monkeypatch, tmp_path):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    return PLANTED


@pytest.fixture
def server():
    with fake_api_server() as srv:
        yield srv
        assert srv.errors == []


def make_adapter(provider: str, srv, **kw):
    opts = {**FAST, **kw}
    if provider == "openai":
        return OpenAIAdapter("gpt-4o-2024-05-13", base_url=srv.openai_base_url, **opts)
    if provider == "azure":
        return AzureOpenAIAdapter("gpt4o", azure_endpoint=srv.base_url, api_version="2024-02-01",
                                  **opts)
    if provider == "anthropic":
        return AnthropicAdapter("claude-3-opus-20240229", base_url=srv.anthropic_base_url, **opts)
    if provider == "gemini":
        return GeminiAdapter("gemini-1.5-pro", base_url=srv.gemini_base_url, logprobs=True, **opts)
    if provider == "vllm":
        return VLLMAdapter("Qwen/Qwen2-VL-7B-Instruct", base_url=srv.openai_base_url,
                           api_key_env="VLLM_API_KEY", **opts)
    if provider == "compatible":
        return OpenAICompatibleAdapter("llava:7b", base_url=srv.openai_base_url, **opts)
    raise ValueError(provider)


def image(seed: int, size: int = 32) -> ImageInput:
    return ImageInput(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def mc_prompt(seed: int, marker: str = "") -> Prompt:
    question = (f"Based on the image, choose the correct option.\nQuestion: Is there a lesion? "
                f"{marker}\nA: yes\nB: no\nAnswer with the option's letter.")
    return Prompt((text_message("system", "You are a careful radiologist."),
                   text_message("user", question, with_image=True)), (image(seed),))


def gen(prompt: Prompt) -> GenerateRequest:
    return GenerateRequest(prompt, GenerationSettings(max_new_tokens=8, temperature=0.0))


def all_text(results) -> str:
    return json.dumps([dataclasses.asdict(r) for r in results], default=str)


# -- every provider: generation, GD where declared, usage, key handling -------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_mc_generation_through_each_sdk(provider, keys, server):
    adapter = make_adapter(provider, server)
    try:
        results = adapter.generate([gen(mc_prompt(i)) for i in range(6)] + [gen(mc_prompt(0))])
    finally:
        adapter.close()
    assert all(r.error is None for r in results), [r.error_detail for r in results]
    assert {r.text for r in results} <= {"A", "B"}
    assert results[0].text == results[-1].text  # same request, same answer
    assert all(r.usage and r.usage.input_tokens > 0 and r.usage.output_tokens > 0 for r in results)
    seen = server.seen[0]
    assert len(seen.images) == 1 and seen.image_types == ["image/png"]
    assert "careful radiologist" in seen.text  # the system prompt reached the provider
    expected_key = {"azure": "AZURE_OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
                    "gemini": "GEMINI_API_KEY", "vllm": "VLLM_API_KEY"}.get(provider, "OPENAI_API_KEY")
    assert seen.credential == PLANTED[expected_key]
    stats = adapter.stats()
    assert stats["requests"] == 7 and stats["input_tokens"] > 0 and stats["failures"] == {}


@pytest.mark.parametrize("provider", ["openai", "azure", "gemini", "vllm"])
def test_gd_letter_scores_merge_variants(provider, keys, server):
    adapter = make_adapter(provider, server)
    assert Capability.NEXT_TOKEN_SCORES in adapter.capabilities
    prompts = [mc_prompt(i) for i in range(4)]
    scores = adapter.next_token_scores([NextTokenRequest(p, ("A", "B")) for p in prompts])
    texts = adapter.generate([gen(p) for p in prompts])
    adapter.close()
    for s, t in zip(scores, texts):
        assert s.error is None
        best, other = t.text, "B" if t.text == "A" else "A"
        # fake top-k: best 0.55 + " best" 0.15 = 0.70, other 0.20 + 0.05 = 0.25
        assert math.exp(s.logprobs[best]) == pytest.approx(0.70)
        assert math.exp(s.logprobs[other]) == pytest.approx(0.25)


def test_candidate_missing_from_top_logprobs_is_minus_infinity(keys, server):
    adapter = make_adapter("openai", server, top_logprobs=1)
    [result] = adapter.next_token_scores([NextTokenRequest(mc_prompt(1), ("A", "B", "C"))])
    adapter.close()
    assert result.error is None
    assert math.isfinite(max(result.logprobs.values()))
    assert result.logprobs["C"] == -math.inf


def test_vllm_loglikelihood_scores_the_continuation_tokens(keys, server):
    adapter = make_adapter("vllm", server)
    prompt = mc_prompt(3)
    continuations = ("yes", "no, there is none")
    [result] = adapter.loglikelihood([LoglikelihoodRequest(prompt, continuations)])
    adapter.close()
    assert result.error is None and len(result.scores) == 2
    for continuation, score in zip(continuations, result.scores):
        # what the fake vLLM scored: the chat template with the continuation as the final,
        # unterminated assistant turn; the continuation's tokens are the last ones
        body = next(s.body for s in server.seen
                    if s.body["messages"][-1] == {"role": "assistant", "content": continuation})
        assert body["prompt_logprobs"] == 0 and body["continue_final_message"] is True
        assert body["add_generation_prompt"] is False
        tokens = fake_tokenize(render_chat(body["messages"], add_generation_prompt=False,
                                           continue_final_message=True))
        n = len(fake_tokenize(continuation))
        assert score.n_tokens == n and score.n_chars == len(continuation)
        assert score.logprob == pytest.approx(sum(fake_token_logprob(t) for t in tokens[-n:]))


@pytest.mark.parametrize("provider,missing", [("openai", "loglikelihood"),
                                              ("anthropic", "next_token_scores"),
                                              ("anthropic", "loglikelihood"),
                                              ("compatible", "next_token_scores")])
def test_undeclared_capability_fails_at_configuration_time(provider, missing, keys, server):
    adapter = make_adapter(provider, server)
    assert Capability(missing) not in adapter.capabilities
    with pytest.raises(ConfigError) as err:
        adapter.require(Capability(missing), "a mode")
    assert "\n" not in str(err.value) and missing in str(err.value)
    call = {"loglikelihood": lambda: adapter.loglikelihood(
                [LoglikelihoodRequest(mc_prompt(0), ("a",))]),
            "next_token_scores": lambda: adapter.next_token_scores(
                [NextTokenRequest(mc_prompt(0))])}[missing]
    with pytest.raises(ConfigError):
        call()
    assert sum(server.requests.values()) == 0


# -- faults: retried, counted, recorded; the batch always completes ------------------------------

@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_transient_faults_are_retried_and_counted(provider, keys, server):
    server.plan.next("rate_limit", times=2, retry_after=0.05).next("server_error").next(
        "overloaded").next("drop")
    adapter = make_adapter(provider, server, max_retries=6)
    results = adapter.generate([gen(mc_prompt(i)) for i in range(8)])
    adapter.close()
    assert all(r.error is None and r.text in ("A", "B") for r in results)
    stats = adapter.stats()
    assert server.plan.served == {"rate_limit": 2, "server_error": 1, "overloaded": 1, "drop": 1}
    assert stats["retries"] == {"rate_limit": 2, "server_error": 2, "connection": 1}
    assert stats["attempts"] == 8 + 5 and stats["failures"] == {}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_persistent_faults_become_error_results_and_the_run_goes_on(provider, keys, server):
    plan = server.plan
    plan.when("MARK-429", "rate_limit", retry_after=0.01)
    plan.when("MARK-500", "server_error")
    plan.when("MARK-SLOW", "slow", delay=2.0)
    plan.when("MARK-BROKEN", "malformed")
    plan.when("MARK-DROP", "drop")
    plan.when("MARK-400", "bad_request")
    markers = {"MARK-429": "rate_limit", "MARK-500": "server_error", "MARK-SLOW": "timeout",
               "MARK-BROKEN": "malformed", "MARK-DROP": "connection", "MARK-400": "bad_request",
               "": None}
    adapter = make_adapter(provider, server, timeout_s=0.8, max_retries=2)
    results = adapter.generate([gen(mc_prompt(i, m)) for i, m in enumerate(markers)])
    adapter.close()
    for (marker, kind), result in zip(markers.items(), results):
        assert result.error == kind, (marker, result)
        if kind:
            assert result.text is None and result.error_detail
    stats = adapter.stats()
    assert stats["failures"] == {k: 1 for k in markers.values() if k}
    # transient kinds were retried (twice each, unless a loaded machine made an attempt time
    # out on its own); malformed and bad requests never
    retries = stats["retries"]
    assert all(retries.get(k, 0) >= 1 for k in TRANSIENT_KINDS), retries
    assert set(retries) <= set(TRANSIENT_KINDS)


@pytest.mark.parametrize("provider,kind", [("openai", "refusal"), ("azure", "refusal"),
                                           ("anthropic", "refusal"), ("gemini", "content_filter")])
def test_refusals_are_recorded_with_their_text(provider, kind, keys, server):
    server.plan.when("REFUSE-ME", "refusal")
    adapter = make_adapter(provider, server)
    refused, fine = adapter.generate([gen(mc_prompt(1, "REFUSE-ME")), gen(mc_prompt(2))])
    adapter.close()
    assert refused.error == kind and fine.error is None
    if kind == "refusal":
        assert refused.text == REFUSAL_TEXT
    assert adapter.stats()["retries"] == {}  # a refusal is an answer, not a transient fault


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_content_filter_stop_is_recorded(provider, keys, server):
    server.plan.when("FILTER-ME", "content_filter")
    adapter = make_adapter(provider, server)
    [result] = adapter.generate([gen(mc_prompt(1, "FILTER-ME"))])
    [scores] = adapter.next_token_scores([NextTokenRequest(mc_prompt(1, "FILTER-ME"))])
    adapter.close()
    assert result.error == "content_filter" and result.text is not None
    assert scores.error == "content_filter"


def test_retry_after_is_honoured_and_pauses_everyone(keys, server):
    server.plan.next("rate_limit", retry_after=0.4)
    adapter = make_adapter("openai", server, max_concurrency=1)
    start = time.monotonic()
    results = adapter.generate([gen(mc_prompt(i)) for i in range(3)])
    elapsed = time.monotonic() - start
    adapter.close()
    assert all(r.error is None for r in results)
    assert elapsed >= 0.4  # the backoff alone (0.01-0.05 s) would be much shorter


def test_in_flight_requests_are_bounded(keys):
    with fake_api_server(latency=0.1) as srv:
        adapter = make_adapter("openai", srv, max_concurrency=3)
        results = adapter.generate([gen(mc_prompt(i)) for i in range(12)])
        adapter.close()
        assert all(r.error is None for r in results)
        assert 2 <= srv.max_in_flight <= 3  # bounded (and really concurrent)


def test_request_rate_limit_spaces_requests(keys, server):
    adapter = make_adapter("openai", server, requests_per_minute=600)  # 10/s, burst of 100
    adapter.throttle.requests.capacity = adapter.throttle.requests.level = 1.0
    start = time.monotonic()
    adapter.generate([gen(mc_prompt(i)) for i in range(4)])
    adapter.close()
    assert time.monotonic() - start >= 0.25  # 3 waits of 0.1 s after the first


def test_sdk_retries_are_disabled(keys, server):
    server.plan.when("ALWAYS-500", "server_error")
    for provider in ("openai", "anthropic", "gemini"):
        before = sum(server.requests.values())
        adapter = make_adapter(provider, server, max_retries=0)
        [result] = adapter.generate([gen(mc_prompt(0, "ALWAYS-500"))])
        adapter.close()
        assert result.error == "server_error"
        assert sum(server.requests.values()) - before == 1, provider  # exactly one HTTP call


# -- event loop: callable from sync code, threads and running loops ------------------------------

def test_callable_from_a_running_event_loop_and_from_threads(keys, server):
    adapter = make_adapter("openai", server)

    async def inside_a_loop():
        return adapter.generate([gen(mc_prompt(1))])

    [from_loop] = asyncio.run(inside_a_loop())
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", adapter.generate(
        [gen(mc_prompt(1))])))
    thread.start()
    thread.join()
    adapter.close()
    assert from_loop.error is None and out["r"][0].text == from_loop.text


def test_empty_batch_sends_nothing(keys, server):
    adapter = make_adapter("openai", server)
    assert adapter.generate([]) == []
    assert sum(server.requests.values()) == 0


# -- images within limits ------------------------------------------------------------------------

def test_large_images_are_downscaled_and_reencoded_within_limits(keys, server):
    noisy = ImageInput(np.random.default_rng(0).integers(0, 256, (900, 700, 3), dtype=np.uint8))
    adapter = make_adapter("anthropic", server, max_image_bytes=60_000, max_image_side=512)
    prompt = Prompt((text_message("user", "What is shown?", with_image=True),), (noisy,))
    [result] = adapter.generate([gen(prompt)])
    adapter.close()
    assert result.error is None
    seen = server.seen[-1]
    from PIL import Image
    import io
    sent = Image.open(io.BytesIO(seen.images[0]))
    assert max(sent.size) <= 512 and seen.image_types == ["image/jpeg"]
    assert 4 * math.ceil(len(seen.images[0]) / 3) <= 60_000
    assert adapter.identity()["images"]["max_side"] == 512


def test_small_grayscale_images_are_sent_losslessly(keys, server):
    gray = ImageInput(np.arange(64 * 48, dtype=np.uint8).reshape(64, 48))
    adapter = make_adapter("gemini", server)
    adapter.generate([gen(Prompt((text_message("user", "?", with_image=True),), (gray,)))])
    adapter.close()
    assert server.seen[-1].image_types == ["image/png"]
    assert server.seen[-1].images[0] == gray.png_bytes()


# -- secrets --------------------------------------------------------------------------------------

def test_no_secret_in_any_output(keys, server, caplog):
    caplog.set_level(logging.DEBUG)
    server.plan.when("ECHO", "echo_auth").when("FAIL", "server_error")
    outputs: list[str] = []
    for provider in PROVIDERS:
        adapter = make_adapter(provider, server, max_retries=1)
        results = adapter.generate([gen(mc_prompt(1, "ECHO")), gen(mc_prompt(2, "FAIL")),
                                    gen(mc_prompt(3))])
        assert [r.error for r in results] == ["bad_request", "server_error", None]
        outputs += [all_text(results), repr(adapter), str(adapter.identity()),
                    str(adapter.stats()), repr(vars(adapter))]
        adapter.close()
    # the fake server did echo the key, so redaction is what kept it out
    assert any("Incorrect API key provided" in o for o in outputs)
    try:
        OpenAIAdapter("gpt-4o", base_url=server.openai_base_url,
                      api_key_env="NOT_SET_ANYWHERE").check_ready()
    except ConfigError as exc:
        outputs.append(str(exc))
    for name in ("openai._base_client", "anthropic._base_client", "httpx2", "google_genai"):
        # what an SDK would log if it ever printed its headers: masked by the log filter
        logging.getLogger(name).debug("headers: %s", {"Authorization": "Bearer " +
                                                      PLANTED["OPENAI_API_KEY"]})
        logging.getLogger(name).warning("key %s", PLANTED["GEMINI_API_KEY"])
    assert sum("***" in r.getMessage() for r in caplog.records) >= 8
    outputs += [r.getMessage() for r in caplog.records]
    outputs += [str(r.exc_text or "") for r in caplog.records]
    blob = "\n".join(outputs)
    for value in PLANTED.values():
        assert value not in blob
        assert "PLANTED" not in blob


def test_missing_key_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    adapter = AnthropicAdapter("claude-3-opus-20240229")  # configs build without keys...
    with pytest.raises(ConfigError) as err:  # ...and fail before the first request
        adapter.generate([gen(mc_prompt(0))])
    message = str(err.value)
    assert "ANTHROPIC_API_KEY" in message and "\n" not in message


def test_dotenv_file_supplies_keys_without_overriding_the_environment(monkeypatch, tmp_path,
                                                                      server):
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=sk-fromdotenv0123456789abcdef\n"
                        "ANTHROPIC_API_KEY=sk-ant-fromdotenv0123456789abc\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fromenviron0123456789abc")
    a = OpenAIAdapter("gpt-4o", base_url=server.openai_base_url, **FAST)
    b = AnthropicAdapter("claude", base_url=server.anthropic_base_url, **FAST)
    a.generate([gen(mc_prompt(0))])
    b.generate([gen(mc_prompt(0))])
    a.close()
    b.close()
    assert server.seen[0].credential == "sk-fromdotenv0123456789abcdef"
    assert server.seen[1].credential == "sk-ant-fromenviron0123456789abc"
    import os
    assert "OPENAI_API_KEY" not in os.environ  # .env values are read, never exported


def test_credentials_in_request_options_are_refused(keys):
    with pytest.raises(ConfigError, match="credential"):
        OpenAIAdapter("gpt-4o", request_options={"extra_headers": {"api-key": "x"}})


# -- configuration errors -------------------------------------------------------------------------

def test_openai_compatible_needs_a_base_url(monkeypatch):
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatibleAdapter("llama3")


def test_compatible_server_key_is_optional(monkeypatch, server, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    adapter = OpenAICompatibleAdapter("llava", base_url=server.openai_base_url, **FAST)
    [result] = adapter.generate([gen(mc_prompt(0))])
    adapter.close()
    assert result.error is None and server.seen[-1].credential == "EMPTY"


def test_prices_are_checked_and_exposed(keys):
    adapter = OpenAIAdapter("gpt-4o", prices={"input_per_million": 2.5, "output_per_million": 10})
    assert adapter.prices == {"input_per_million": 2.5, "output_per_million": 10.0}
    with pytest.raises(ConfigError, match="prices"):
        OpenAIAdapter("gpt-4o", prices={"input": 2.5})


def test_identity_changes_with_what_changes_answers(keys):
    a = OpenAIAdapter("gpt-4o", base_url="http://user:pw123456@host/v1")
    b = OpenAIAdapter("gpt-4o", base_url="http://user:pw123456@host/v1", image_detail="low")
    c = OpenAIAdapter("gpt-4o", base_url="http://user:pw123456@host/v1", max_concurrency=2)
    assert a.identity() != b.identity()
    assert a.identity() == c.identity()  # concurrency does not change answers
    assert "pw123456" not in str(a.identity()) + repr(a)


def test_azure_without_endpoint_fails_before_sending(keys, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    adapter = AzureOpenAIAdapter("gpt4o")
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        adapter.generate([gen(mc_prompt(0))])
