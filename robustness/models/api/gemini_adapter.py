"""Google Gemini through the ``google-genai`` SDK (the Gemini Developer API).

Generation everywhere; next-token scores only when ``logprobs: true`` (the API returns top
candidates for models that support ``responseLogprobs``; many do not, so it is off by default).
A blocked prompt or a safety stop is recorded as ``content_filter``.
"""

from __future__ import annotations

import math
from typing import Any

from robustness.errors import ConfigError
from robustness.models.api.base import GENERATE, NEXT_TOKEN, ApiAdapter, Prepared, parse_guard
from robustness.models.api.failures import (CONTENT_FILTER, MALFORMED, ApiFailure,
                                            classify_generic, kind_for_status,
                                            parse_retry_after, retry_delay_from_body)
from robustness.models.api.images import GEMINI_LIMITS
from robustness.models.api.scoring import merge_candidate_logprobs
from robustness.models.base import (Capability, GenerateResult, NextTokenRequest,
                                    NextTokenResult, Prompt, Usage)

# Finish / block reasons that mean a filter, not the model, ended the answer.
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR", "JAILBREAK", "LANGUAGE"}


def _name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def gemini_contents(prompt: Prompt, images: list[Any]) -> tuple[str | None, list[Any]]:
    """(system instruction, contents) with images as inline bytes parts."""
    from google.genai import types

    queue = iter(images)
    system: list[str] = []
    contents = []
    for message in prompt.messages:
        if message.role == "system":
            system.append(message.text)
            continue
        parts = []
        for part in message.content:
            if part.get("type") == "image":
                enc = next(queue)
                parts.append(types.Part.from_bytes(data=enc.data, mime_type=enc.media_type))
            elif part.get("type") == "text" and part.get("text"):
                parts.append(types.Part(text=part["text"]))
        contents.append(types.Content(role="model" if message.role == "assistant" else "user",
                                      parts=parts))
    return ("\n\n".join(system) if system else None), contents


class GeminiAdapter(ApiAdapter):
    """A Gemini model (``gemini-1.5-pro`` in the paper)."""

    provider = "gemini"
    sdk = "google.genai"
    default_key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    image_limits = GEMINI_LIMITS
    tokens_per_image = 258

    def __init__(self, name: str, *, logprobs: bool = False, top_logprobs: int = 20,
                 api_version: str | None = None, **common: Any) -> None:
        super().__init__(name, **common)
        self.logprobs = bool(logprobs)
        self.top_logprobs = int(top_logprobs)
        if self.logprobs and not 1 <= self.top_logprobs <= 20:
            raise ConfigError(f"model {self.name}: top_logprobs must be 1..20")
        self.api_version = api_version
        from google.genai import types

        try:  # request_options are GenerateContentConfig fields: check them now, not per request
            types.GenerateContentConfig(**self.request_options)
        except Exception as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"model {self.name}: request_options are not valid "
                              f"GenerateContentConfig fields: {first}") from None
        caps = {Capability.GENERATE}
        if self.logprobs:
            caps.add(Capability.NEXT_TOKEN_SCORES)
        self.capabilities = frozenset(caps)

    def _identity_extra(self) -> dict[str, Any]:
        return {"api_version": self.api_version, "top_logprobs": self.top_logprobs}

    def _make_client(self) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=self.base_url, api_version=self.api_version,
                                    timeout=int(self.timeout_s * 1000),
                                    retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(api_key=self.api_key().reveal(), vertexai=False, http_options=options)

    async def _close_client(self, client: Any) -> None:
        await client.aio.aclose()
        client.close()

    def _classify(self, exc: BaseException) -> ApiFailure:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            headers = getattr(getattr(exc, "response", None), "headers", None)
            wait = parse_retry_after(headers) or retry_delay_from_body(exc.details)
            return ApiFailure(kind_for_status(exc.code), str(exc), retry_after=wait,
                              status=exc.code)
        return classify_generic(exc)

    def _build(self, kind: str, request: Any) -> Prepared:
        from google.genai import types

        prompt: Prompt = request.prompt
        system, contents = gemini_contents(prompt, self.encode_images(prompt))
        fields: dict[str, Any] = {**self.request_options, "candidate_count": 1}
        if system:
            fields["system_instruction"] = system
        if kind == GENERATE:
            s = request.settings
            fields.update(temperature=s.temperature, max_output_tokens=s.max_new_tokens,
                          seed=s.seed)
            if s.top_p is not None:
                fields["top_p"] = s.top_p
            max_out = s.max_new_tokens
        elif kind == NEXT_TOKEN:
            fields.update(temperature=0.0, max_output_tokens=1, response_logprobs=True,
                          logprobs=self.top_logprobs)
            max_out = 1
        else:
            raise ConfigError(f"model {self.name}: {kind} is not served by gemini")
        payload = {"model": self.name, "contents": contents,
                   "config": types.GenerateContentConfig(**fields)}
        return Prepared(payload, self.estimate_tokens(prompt, max_out))

    async def _send(self, kind: str, prepared: Prepared, request: Any) -> Any:
        response = await self._client.aio.models.generate_content(**prepared.payload)
        if kind == GENERATE:
            return self._parse_generate(response)
        return self._parse_next_token(response, request)

    @staticmethod
    def _usage(response: Any) -> Usage | None:
        meta = getattr(response, "usage_metadata", None)
        if meta is None:
            return None
        return Usage(input_tokens=int(meta.prompt_token_count or 0),
                     output_tokens=int(meta.candidates_token_count or 0)
                     + int(getattr(meta, "thoughts_token_count", 0) or 0))

    @staticmethod
    def _blocked(response: Any) -> str | None:
        feedback = getattr(response, "prompt_feedback", None)
        reason = _name(getattr(feedback, "block_reason", None)) if feedback else None
        return f"the prompt was blocked ({reason})" if reason else None

    @parse_guard("Gemini response")
    def _parse_generate(self, response: Any) -> GenerateResult:
        usage = self._usage(response)
        blocked = self._blocked(response)
        if blocked:
            return GenerateResult(text="", usage=usage, error=CONTENT_FILTER, error_detail=blocked)
        if not response.candidates:
            raise ApiFailure(MALFORMED, "response without candidates")
        candidate = response.candidates[0]
        finish = _name(candidate.finish_reason)
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(p.text for p in parts if p.text and not getattr(p, "thought", False))
        if finish in _FILTERED:
            return GenerateResult(text=text, usage=usage, error=CONTENT_FILTER,
                                  error_detail=f"the answer was stopped ({finish})",
                                  finish_reason=finish)
        return GenerateResult(text=text, usage=usage, finish_reason=finish)

    @parse_guard("Gemini response with logprobs")
    def _parse_next_token(self, response: Any, request: NextTokenRequest) -> NextTokenResult:
        usage = self._usage(response)
        none = {c: -math.inf for c in request.candidates}
        blocked = self._blocked(response)
        if blocked:
            return NextTokenResult(logprobs=none, usage=usage, error=CONTENT_FILTER,
                                   error_detail=blocked)
        if not response.candidates:
            raise ApiFailure(MALFORMED, "response without candidates")
        candidate = response.candidates[0]
        finish = _name(candidate.finish_reason)
        if finish in _FILTERED:
            return NextTokenResult(logprobs=none, usage=usage, error=CONTENT_FILTER,
                                   error_detail=f"the answer was stopped ({finish})")
        result = candidate.logprobs_result
        if result is None or not result.top_candidates:
            raise ApiFailure(MALFORMED, "the server returned no logprobs; this model may not "
                                        "support them (set logprobs: false)")
        top = [(c.token, float(c.log_probability)) for c in result.top_candidates[0].candidates]
        return NextTokenResult(logprobs=merge_candidate_logprobs(top, request.candidates),
                               usage=usage)
