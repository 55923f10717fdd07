"""The model adapter interface: every backend answers whole lists of requests.

Three request kinds cover the paper's four modes: free generation (MC, FF), next-token scores
for candidate strings (GD) and log-likelihood of continuations (PS). Adapters declare which
they serve in ``capabilities`` so a mode they cannot serve fails at configuration time.
The model layer knows nothing of probes, Hydra or W&B.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Mapping, Sequence


from robustness.data.image import ImageInput
from robustness.errors import ConfigError


class Capability(str, Enum):
    """What an adapter can compute."""

    GENERATE = "generate"
    NEXT_TOKEN_SCORES = "next_token_scores"
    LOGLIKELIHOOD = "loglikelihood"


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One chat turn. ``content`` mixes text and image slots in order, e.g.
    ``({"type": "image"}, {"type": "text", "text": "What is shown?"})``; image slots are filled,
    in order of appearance across all messages, from the request's ``images``."""

    role: Role
    content: tuple[Mapping[str, str], ...]

    @property
    def text(self) -> str:
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")

    @property
    def n_images(self) -> int:
        return sum(1 for part in self.content if part.get("type") == "image")

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": [dict(p) for p in self.content]}


def text_message(role: Role, text: str, *, with_image: bool = False) -> ChatMessage:
    """A message of plain text, optionally preceded by one image slot."""
    parts: list[Mapping[str, str]] = [{"type": "image"}] if with_image else []
    parts.append({"type": "text", "text": text})
    return ChatMessage(role=role, content=tuple(parts))


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; greedy by default as in the paper's MC mode."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float | None = None
    num_beams: int = 1
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "num_beams": self.num_beams, "seed": self.seed}


@dataclass(frozen=True)
class Prompt:
    """Rendered chat messages plus the images that fill their image slots, in order."""

    messages: tuple[ChatMessage, ...]
    images: tuple[ImageInput, ...] = ()

    def __post_init__(self) -> None:
        slots = sum(m.n_images for m in self.messages)
        if slots != len(self.images):
            raise ValueError(f"prompt has {slots} image slots but {len(self.images)} images")

    def cache_payload(self) -> dict[str, Any]:
        """Everything about the prompt that can change an answer, image pixels by digest."""
        return {"messages": [m.as_dict() for m in self.messages],
                "images": [img.digest for img in self.images]}


@dataclass(frozen=True)
class GenerateRequest:
    prompt: Prompt
    settings: GenerationSettings = field(default_factory=GenerationSettings)


@dataclass(frozen=True)
class NextTokenRequest:
    """Scores of the next token after the prompt (and the assistant turn start), per candidate."""

    prompt: Prompt
    candidates: tuple[str, ...] = ("A", "B")
    # variants: every single-token spelling of a candidate, merged (A, " A", "▁A");
    # encoded: the first token of tokenizer.encode(candidate) alone (the official GD code)
    spelling: str = "variants"


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Log-likelihood of each continuation as the assistant's answer to the prompt."""

    prompt: Prompt
    continuations: tuple[str, ...]


@dataclass
class Usage:
    """Token usage of one call (API providers fill it; local models may too)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class GenerateResult:
    text: str | None  # None when the call failed
    latency_s: float = 0.0
    usage: Usage | None = None
    error: str | None = None  # e.g. "rate_limit", "timeout", "refusal", "server_error"
    error_detail: str | None = None
    finish_reason: str | None = None


@dataclass
class NextTokenResult:
    logprobs: dict[str, float]  # candidate -> log-probability of the next token (variants merged)
    latency_s: float = 0.0
    usage: Usage | None = None
    error: str | None = None
    error_detail: str | None = None


@dataclass
class ContinuationScore:
    logprob: float  # sum of token log-probabilities
    n_tokens: int
    n_chars: int


@dataclass
class LoglikelihoodResult:
    scores: list[ContinuationScore]
    latency_s: float = 0.0
    usage: Usage | None = None
    error: str | None = None
    error_detail: str | None = None


class ModelAdapter(ABC):
    """Base of every model backend. Methods take whole lists so a backend can sort/batch/pad."""

    capabilities: frozenset[Capability] = frozenset()
    prompt_family: str | None = None  # selects a mode's per-family templates
    plain_prompts: bool = False  # plain text, not chat turns: modes use their plain_templates
    prices: Mapping[str, float] | None = None  # USD per million input/output tokens (API presets)
    spellings: frozenset[str] = frozenset({"variants"})  # NextTokenRequest.spelling served

    @property
    def model_id(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """Everything about the model that can change an answer (id, revision, dtype, ...)."""
        return {"model_id": self.model_id}

    def estimate_tokens(self, prompt: Prompt, max_output: int) -> float | None:
        """Tokens one request of ``prompt`` would cost (input plus ``max_output``), where the
        backend can estimate it (API models; ``robustness plan`` prices runs with it)."""
        return None

    def stats(self) -> dict[str, Any] | None:
        """Counters the backend keeps itself (requests, retries, failures), if any."""
        return None

    def unwrap(self) -> "ModelAdapter":
        """The backend itself, below any wrappers (the answer cache)."""
        return self

    def require(self, capability: Capability, purpose: str) -> None:
        """Fail at configuration time if this adapter cannot serve ``capability``."""
        if capability not in self.capabilities:
            have = ", ".join(sorted(c.value for c in self.capabilities)) or "nothing"
            raise ConfigError(f"model {self.model_id} cannot serve {purpose}: it needs "
                              f"'{capability.value}', the adapter supports {have}")

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        raise NotImplementedError

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        raise NotImplementedError

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (clients, GPU memory)."""


class WhiteBoxAdapter(ModelAdapter):
    """An adapter that exposes its loaded torch model, so gradients can flow to the pixels.

    Saliency (Integrated Gradients) and white-box attacks replay the adapter's own prompt
    rendering, processor call and scoring through these methods (see ``explain/whitebox.py``),
    in batches of ``batch_size`` as the adapter answers.
    """

    batch_size: int = 8

    @abstractmethod
    def load(self) -> Any:
        """The loaded model bundle: ``model``, ``processor``, ``family`` and what was derived."""

    @abstractmethod
    def render(self, prompt: Prompt) -> str:
        """The text handed to the processor for a prompt awaiting the assistant's answer."""

    @abstractmethod
    def render_with_answer(self, prompt: Prompt, answer: str) -> tuple[str, str]:
        """``prompt`` + ``answer`` split into (prefix text, answer text) as the model sees it."""

    @abstractmethod
    def encode(self, texts: list[str], images: list[tuple[Any, ...]]) -> dict[str, Any]:
        """Processor inputs for texts with their PIL images, as the adapter batches them."""

    @abstractmethod
    def candidate_token_ids(self, candidate: str) -> tuple[int, ...]:
        """Token ids that spell ``candidate`` as a next token (GD's merged letter spellings)."""
