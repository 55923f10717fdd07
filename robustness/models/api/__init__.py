"""API and served models as ``ModelAdapter``s: OpenAI, Azure OpenAI, Anthropic, Gemini, vLLM and
any OpenAI-compatible server, each through its official SDK.

Adapters are imported lazily (``robustness.models.api.OpenAIAdapter`` loads only the OpenAI
module), so Hydra ``_target_`` paths stay short and unused SDKs are never imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OpenAIAdapter": "openai_adapter",
    "AzureOpenAIAdapter": "openai_adapter",
    "OpenAICompatibleAdapter": "openai_adapter",
    "VLLMAdapter": "openai_adapter",
    "AnthropicAdapter": "anthropic_adapter",
    "GeminiAdapter": "gemini_adapter",
    "ApiAdapter": "base",
    "estimate_cost": "base",
    "redact": "secrets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
