"""The model adapter interface: every backend answers whole lists of requests.

Three request kinds cover the paper's four modes: free generation (MC, FF), next-token scores
for candidate strings (GD) and log-likelihood of continuations (PS). Adapters declare which
they serve in ``capabilities`` so a mode they cannot serve fails at configuration time.
The model layer knows nothing of probes, Hydra or W&B.
"""

from __future__ import annotations

import hashlib
import io
from abc import ABC
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from robustness.errors import ConfigError


class Capability(str, Enum):
    """What an adapter can compute."""

    GENERATE = "generate"
    NEXT_TOKEN_SCORES = "next_token_scores"
    LOGLIKELIHOOD = "loglikelihood"


@dataclass(frozen=True, eq=False)
class ImageInput:
    """One image as uint8 pixels (H×W grayscale or H×W×3 RGB), the form probes produce.

    ``digest`` hashes the pixels after any perturbation, so it keys the answer cache.
    """

    pixels: np.ndarray

    def __post_init__(self) -> None:
        arr = np.ascontiguousarray(self.pixels)
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
            raise ValueError("ImageInput needs a uint8 H×W or H×W×C array")
        arr.setflags(write=False)
        object.__setattr__(self, "pixels", arr)

    @classmethod
    def open(cls, path: str | Path) -> "ImageInput":
        """Read an image file (grayscale stays grayscale, everything else becomes RGB)."""
        from PIL import Image

        with Image.open(path) as img:
            img = img.convert("L") if img.mode in ("L", "I;16", "I", "1") else img.convert("RGB")
            return cls(np.asarray(img, dtype=np.uint8))

    @property
    def digest(self) -> str:
        """sha256 of shape and pixel bytes (cached)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            h = hashlib.sha256(str(self.pixels.shape).encode())
            h.update(self.pixels.tobytes())
            cached = h.hexdigest()
            object.__setattr__(self, "_digest", cached)
        return cached

    def pil(self, mode: str = "RGB"):
        """A PIL image in ``mode`` (RGB by default, as most processors expect)."""
        from PIL import Image

        return Image.fromarray(self.pixels).convert(mode)

    def png_bytes(self) -> bytes:
        """Lossless PNG encoding, e.g. for API providers."""
        buf = io.BytesIO()
        self.pil("L" if self.pixels.ndim == 2 else "RGB").save(buf, format="PNG")
        return buf.getvalue()


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

    @property
    def model_id(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """Everything about the model that can change an answer (id, revision, dtype, ...)."""
        return {"model_id": self.model_id}

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
