"""Anthropic Messages API (Claude): generation only — the API returns no log-probabilities.

The current API version (the SDK's default) rejects sampling parameters; models that still
take them (the paper's Claude 3 Opus, on API version ``2023-06-01``) get ``temperature`` and
``top_p`` when ``sampling: true``.
"""

from __future__ import annotations

from typing import Any

from robustness.models.api.base import GENERATE, ApiAdapter, Prepared, parse_guard
from robustness.models.api.failures import MALFORMED, REFUSAL, ApiFailure, classify_openai_style
from robustness.models.api.images import ANTHROPIC_LIMITS
from robustness.models.base import Capability, GenerateRequest, GenerateResult, Prompt, Usage


def anthropic_messages(prompt: Prompt, images: list[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system text, messages) with images as base64 content blocks."""
    queue = iter(images)
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in prompt.messages:
        if message.role == "system":
            system.append(message.text)
            continue
        blocks: list[dict[str, Any]] = []
        for part in message.content:
            if part.get("type") == "image":
                enc = next(queue)
                blocks.append({"type": "image", "source": {"type": "base64",
                                                           "media_type": enc.media_type,
                                                           "data": enc.b64}})
            elif part.get("type") == "text" and part.get("text"):  # empty blocks are rejected
                blocks.append({"type": "text", "text": part["text"]})
        out.append({"role": message.role, "content": blocks})
    if out and out[-1]["role"] == "assistant":  # a prefill may not end with whitespace
        for block in out[-1]["content"]:
            if block["type"] == "text":
                block["text"] = block["text"].rstrip()
    return ("\n\n".join(system) if system else None), out


class AnthropicAdapter(ApiAdapter):
    """A Claude model through the official ``anthropic`` SDK."""

    provider = "anthropic"
    sdk = "anthropic"
    default_key_env = ("ANTHROPIC_API_KEY",)
    image_limits = ANTHROPIC_LIMITS
    tokens_per_image = 1600  # ≈ width × height / 750 at the recommended 1092×1092

    def __init__(self, name: str, *, api_version: str | None = None, sampling: bool = False,
                 **common: Any) -> None:
        super().__init__(name, **common)
        self.api_version = api_version
        self.sampling = bool(sampling)
        self.capabilities = frozenset({Capability.GENERATE})

    def _identity_extra(self) -> dict[str, Any]:
        return {"api_version": self.api_version, "sampling": self.sampling}

    def _make_client(self) -> Any:
        import anthropic

        headers = {"anthropic-version": self.api_version} if self.api_version else None
        return anthropic.AsyncAnthropic(api_key=self.api_key().reveal(), base_url=self.base_url,
                                        max_retries=0, timeout=self.timeout_s,
                                        default_headers=headers)

    def _classify(self, exc: BaseException) -> ApiFailure:
        return classify_openai_style(exc)

    def _build(self, kind: str, request: GenerateRequest) -> Prepared:
        assert kind == GENERATE, kind  # the only capability declared
        s = request.settings
        system, messages = anthropic_messages(request.prompt, self.encode_images(request.prompt))
        payload: dict[str, Any] = {**self.request_options, "model": self.name,
                                   "max_tokens": s.max_new_tokens, "messages": messages}
        if system:
            payload["system"] = system
        if self.sampling:
            extra = dict(self.request_options.get("extra_body", {}))
            extra["temperature"] = s.temperature
            if s.top_p is not None:
                extra["top_p"] = s.top_p
            payload["extra_body"] = extra
        return Prepared(payload, self.estimate_tokens(request.prompt, s.max_new_tokens))

    async def _send(self, kind: str, prepared: Prepared, request: Any) -> GenerateResult:
        response = await self._client.messages.create(**prepared.payload)
        return self._parse(response)

    @parse_guard("message")
    def _parse(self, response: Any) -> GenerateResult:
        if not hasattr(response, "content") or response.content is None:
            raise ApiFailure(MALFORMED, "message without content")
        text = "".join(block.text for block in response.content
                       if getattr(block, "type", None) == "text")
        usage = None
        if response.usage is not None:
            u = response.usage
            usage = Usage(input_tokens=int(u.input_tokens or 0)
                          + int(getattr(u, "cache_creation_input_tokens", 0) or 0)
                          + int(getattr(u, "cache_read_input_tokens", 0) or 0),
                          output_tokens=int(u.output_tokens or 0))
        stop = response.stop_reason
        if stop == "refusal":
            return GenerateResult(text=text, usage=usage, error=REFUSAL,
                                  error_detail="the model refused to answer", finish_reason=stop)
        return GenerateResult(text=text, usage=usage, finish_reason=stop)
