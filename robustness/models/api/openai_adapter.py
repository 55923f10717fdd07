"""OpenAI chat completions: OpenAI itself, Azure OpenAI, and any OpenAI-compatible server.

- :class:`OpenAIAdapter` — api.openai.com (or ``base_url``); generation and, through
  ``logprobs``/``top_logprobs``, next-token scores for GD.
- :class:`AzureOpenAIAdapter` — an Azure deployment (``name`` is the deployment).
- :class:`OpenAICompatibleAdapter` — vLLM, Ollama, LM Studio, TGI... by ``base_url``; GD only
  where the server returns top log-probabilities (``logprobs: true``).
- :class:`VLLMAdapter` — a vLLM server: GD, and PS through vLLM's ``prompt_logprobs`` on the
  chat endpoint (the prompt plus the continuation as a final assistant turn, continued rather
  than closed, so the tokens that spell the continuation can be scored).
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

from robustness.errors import ConfigError
from robustness.validate import strict_bool
from robustness.models.api.base import (GENERATE, LOGLIKELIHOOD, NEXT_TOKEN, ApiAdapter,
                                        ContinuationRequest, Prepared, parse_guard)
from robustness.models.api.failures import (CONTENT_FILTER, MALFORMED, REFUSAL, ApiFailure,
                                            classify_openai_style)
from robustness.models.api.images import OPENAI_LIMITS, EncodedImage
from robustness.models.api.scoring import continuation_score, merge_candidate_logprobs
from robustness.models.base import (Capability, GenerateResult,
                                    LoglikelihoodResult, NextTokenRequest, NextTokenResult,
                                    Prompt, Usage)

_MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")


def chat_messages(prompt: Prompt, images: Sequence[EncodedImage],
                  image_detail: str | None = None) -> list[dict[str, Any]]:
    """The prompt as chat-completions messages, images inline as base64 data URLs."""
    queue = iter(images)
    out: list[dict[str, Any]] = []
    for message in prompt.messages:
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if part.get("type") == "image":
                url: dict[str, Any] = {"url": next(queue).data_url}
                if image_detail:
                    url["detail"] = image_detail
                parts.append({"type": "image_url", "image_url": url})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
        if all(p["type"] == "text" for p in parts):  # plain strings: accepted everywhere
            out.append({"role": message.role, "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": message.role, "content": parts})
    return out


def _usage(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return Usage(input_tokens=int(usage.prompt_tokens or 0),
                 output_tokens=int(usage.completion_tokens or 0))


class OpenAIAdapter(ApiAdapter):
    """An OpenAI chat model (default ``gpt-4o``-style: images, logprobs)."""

    provider = "openai"
    sdk = "openai"
    default_key_env = ("OPENAI_API_KEY",)
    image_limits = OPENAI_LIMITS
    default_logprobs = True
    default_max_tokens_param = "max_completion_tokens"
    tokens_per_image = 765  # a 1024×1024 image at high detail
    max_top_logprobs = 20

    def __init__(self, name: str, *, logprobs: bool | None = None, top_logprobs: int = 20,
                 image_detail: str | None = None, max_tokens_param: str | None = None,
                 send_seed: bool = True, send_temperature: bool = True,
                 reasoning_tokens: int = 0, **common: Any) -> None:
        super().__init__(name, **common)
        self.logprobs = self.default_logprobs if logprobs is None else bool(logprobs)
        self.top_logprobs = int(top_logprobs)
        if self.logprobs and not 1 <= self.top_logprobs <= self.max_top_logprobs:
            raise ConfigError(f"model {self.name}: top_logprobs must be 1..{self.max_top_logprobs}"
                              f", got {top_logprobs}")
        if image_detail not in (None, "auto", "low", "high"):
            raise ConfigError(f"model {self.name}: image_detail must be auto, low or high")
        self.image_detail = image_detail
        self.max_tokens_param = max_tokens_param or self.default_max_tokens_param
        if self.max_tokens_param not in _MAX_TOKENS_PARAMS:
            raise ConfigError(f"model {self.name}: max_tokens_param must be one of "
                              f"{', '.join(_MAX_TOKENS_PARAMS)}")
        self.send_seed = strict_bool("model.send_seed", send_seed)
        # reasoning models (o1, o3, …) reject temperature and spend hidden reasoning tokens from
        # the completion budget: add ``reasoning_tokens`` to each request's max_new_tokens
        self.send_temperature = strict_bool("model.send_temperature", send_temperature)
        if not isinstance(reasoning_tokens, int) or isinstance(reasoning_tokens, bool) or \
                reasoning_tokens < 0:
            raise ConfigError(f"model {self.name}: reasoning_tokens must be a whole number ≥ 0, "
                              f"got {reasoning_tokens!r}")
        self.reasoning_tokens = reasoning_tokens
        caps = {Capability.GENERATE}
        if self.logprobs:
            caps.add(Capability.NEXT_TOKEN_SCORES)
        self.capabilities = frozenset(caps | self._extra_capabilities())

    def _extra_capabilities(self) -> set[Capability]:
        return set()

    def _identity_extra(self) -> dict[str, Any]:
        extra = {"image_detail": self.image_detail, "top_logprobs": self.top_logprobs,
                 "send_seed": self.send_seed}
        if not self.send_temperature or self.reasoning_tokens:  # only where set: old keys hold
            extra.update(send_temperature=self.send_temperature,
                         reasoning_tokens=self.reasoning_tokens)
        return extra

    def _make_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(api_key=self.api_key().reveal(), base_url=self.base_url,
                                  max_retries=0, timeout=self.timeout_s)

    def _classify(self, exc: BaseException) -> ApiFailure:
        return classify_openai_style(exc)

    # -- payloads -------------------------------------------------------------------------------
    def _payload(self, messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        payload = {**self.request_options, "model": self.name, "messages": messages, **fields}
        return payload

    def _build(self, kind: str, request: Any) -> Prepared:
        prompt: Prompt = request.prompt
        messages = chat_messages(prompt, self.encode_images(prompt), self.image_detail)
        if kind == GENERATE:
            s = request.settings
            fields: dict[str, Any] = {self.max_tokens_param:
                                      s.max_new_tokens + self.reasoning_tokens}
            if self.send_temperature:
                fields["temperature"] = s.temperature
            if s.top_p is not None:
                fields["top_p"] = s.top_p
            if self.send_seed:
                fields["seed"] = s.seed
            return Prepared(self._payload(messages, **fields),
                            self.estimate_tokens(prompt, s.max_new_tokens + self.reasoning_tokens))
        if kind == NEXT_TOKEN:
            fields = {"temperature": 0.0, self.max_tokens_param: 1, "logprobs": True,
                      "top_logprobs": self.top_logprobs}
            return Prepared(self._payload(messages, **fields), self.estimate_tokens(prompt, 1))
        raise ConfigError(f"model {self.name}: {kind} is not served by {self.provider}")

    async def _send(self, kind: str, prepared: Prepared, request: Any) -> Any:
        response = await self._client.chat.completions.create(**prepared.payload)
        if kind == GENERATE:
            return self._parse_generate(response)
        return self._parse_next_token(response, request)

    # -- parsing --------------------------------------------------------------------------------
    @parse_guard("chat completion")
    def _parse_generate(self, response: Any) -> GenerateResult:
        choice = response.choices[0]
        message, finish = choice.message, choice.finish_reason
        usage = _usage(response)
        refusal = getattr(message, "refusal", None)
        if refusal:
            return GenerateResult(text=refusal, usage=usage, error=REFUSAL,
                                  error_detail="the model refused to answer", finish_reason=finish)
        if finish == "content_filter":
            return GenerateResult(text=message.content or "", usage=usage, error=CONTENT_FILTER,
                                  error_detail="the provider's content filter stopped the answer",
                                  finish_reason=finish)
        if message.content is None:
            raise ApiFailure(MALFORMED, f"answer without content (finish_reason={finish})")
        return GenerateResult(text=message.content, usage=usage, finish_reason=finish)

    @parse_guard("chat completion with logprobs")
    def _parse_next_token(self, response: Any, request: NextTokenRequest) -> NextTokenResult:
        choice = response.choices[0]
        usage = _usage(response)
        none = {c: -math.inf for c in request.candidates}
        if getattr(choice.message, "refusal", None):
            return NextTokenResult(logprobs=none, usage=usage, error=REFUSAL,
                                   error_detail="the model refused to answer")
        if choice.finish_reason == "content_filter":
            return NextTokenResult(logprobs=none, usage=usage, error=CONTENT_FILTER,
                                   error_detail="the provider's content filter stopped the answer")
        content = choice.logprobs.content if choice.logprobs is not None else None
        if not content:
            raise ApiFailure(MALFORMED, "the server returned no logprobs; set logprobs: false "
                                        "for this model if it cannot")
        first = content[0]
        top = [(t.token, float(t.logprob)) for t in (first.top_logprobs or [])]
        if first.token not in {t for t, _ in top}:
            top.append((first.token, float(first.logprob)))
        return NextTokenResult(logprobs=merge_candidate_logprobs(top, request.candidates),
                               usage=usage)


class AzureOpenAIAdapter(OpenAIAdapter):
    """An Azure OpenAI deployment; ``name`` is the deployment name."""

    provider = "azure_openai"
    default_key_env = ("AZURE_OPENAI_API_KEY",)
    default_max_tokens_param = "max_tokens"

    def __init__(self, name: str, *, azure_endpoint: str | None = None,
                 endpoint_env: str = "AZURE_OPENAI_ENDPOINT", api_version: str = "2024-10-21",
                 base_url: str | None = None, **common: Any) -> None:
        endpoint = (azure_endpoint or base_url or os.environ.get(endpoint_env)
                    or _dotenv_get(endpoint_env, common.get("dotenv")))
        self.api_version = str(api_version)
        self.endpoint_env = endpoint_env
        super().__init__(name, base_url=endpoint, **common)

    def check_ready(self) -> None:
        if not self.base_url:
            raise ConfigError(f"model {self.name}: no Azure endpoint; set model.azure_endpoint "
                              f"or {self.endpoint_env}")
        super().check_ready()

    def _identity_extra(self) -> dict[str, Any]:
        return {**super()._identity_extra(), "api_version": self.api_version}

    def _make_client(self) -> Any:
        import openai

        return openai.AsyncAzureOpenAI(api_key=self.api_key().reveal(),
                                       azure_endpoint=self.base_url,
                                       api_version=self.api_version, max_retries=0,
                                       timeout=self.timeout_s)


def _dotenv_get(name: str, dotenv: str | None) -> str | None:
    from robustness.models.api.secrets import _dotenv_values

    return _dotenv_values(dotenv).get(name)


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Any server speaking OpenAI chat completions at ``base_url`` (vLLM, Ollama, LM Studio,
    TGI). The key is optional (local servers ignore it)."""

    provider = "openai_compatible"
    key_required = False
    default_logprobs = False
    default_max_tokens_param = "max_tokens"

    def __init__(self, name: str, *, base_url: str | None = None, **common: Any) -> None:
        if not base_url:
            raise ConfigError(f"model {name}: model.base_url is required for an "
                              f"OpenAI-compatible server (e.g. http://localhost:8000/v1)")
        if not str(base_url).startswith(("http://", "https://")):
            raise ConfigError(f"model {name}: model.base_url must start with http:// or "
                              f"https://, got {base_url!r}")
        super().__init__(name, base_url=base_url, **common)


class VLLMAdapter(OpenAICompatibleAdapter):
    """A vLLM server: generation, next-token scores and continuation log-likelihoods."""

    provider = "vllm"
    default_logprobs = True
    max_top_logprobs = 1000  # the server's --max-logprobs decides (20 by default)

    def _extra_capabilities(self) -> set[Capability]:
        return {Capability.LOGLIKELIHOOD}

    def _build(self, kind: str, request: Any) -> Prepared:
        if kind != LOGLIKELIHOOD:
            return super()._build(kind, request)
        req: ContinuationRequest = request
        messages = chat_messages(req.prompt, self.encode_images(req.prompt), self.image_detail)
        if messages and messages[-1]["role"] == "assistant" and isinstance(
                messages[-1]["content"], str):
            messages[-1] = {"role": "assistant",
                            "content": messages[-1]["content"] + req.continuation}
        else:
            messages.append({"role": "assistant", "content": req.continuation})
        extra = {**self.request_options.get("extra_body", {}), "prompt_logprobs": 0,
                 "add_generation_prompt": False, "continue_final_message": True}
        payload = self._payload(messages, temperature=0.0, max_tokens=1, extra_body=extra)
        return Prepared(payload, self.estimate_tokens(req.prompt, 1) + len(req.continuation) / 4)

    async def _send(self, kind: str, prepared: Prepared, request: Any) -> Any:
        if kind != LOGLIKELIHOOD:
            return await super()._send(kind, prepared, request)
        response = await self._client.chat.completions.create(**prepared.payload)
        return self._parse_loglikelihood(response, request)

    @parse_guard("chat completion with prompt_logprobs")
    def _parse_loglikelihood(self, response: Any, request: ContinuationRequest) -> LoglikelihoodResult:
        prompt_logprobs = getattr(response, "prompt_logprobs", None)
        if prompt_logprobs is None and getattr(response, "choices", None):
            prompt_logprobs = getattr(response.choices[0], "prompt_logprobs", None)
        score = continuation_score(prompt_logprobs, request.continuation)
        return LoglikelihoodResult(scores=[score], usage=_usage(response))
