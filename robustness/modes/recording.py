"""Capture the exact requests an answering mode sends, without asking any model.

A :class:`RecordingAdapter` stands in for the model: the mode renders its queries and calls the
adapter as it would in a run, the adapter keeps the requests and returns neutral placeholder
results. The reference model is trained on what the modes render (not on a copy of it), and
``robustness plan`` counts what a run will ask from the same requests.
"""

from __future__ import annotations

from typing import Sequence, Union

from robustness.models.base import (
    Capability,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelAdapter,
    NextTokenRequest,
    NextTokenResult,
)
from robustness.modes.base import AnsweringMode
from robustness.data.query import Query

Request = Union[GenerateRequest, NextTokenRequest, LoglikelihoodRequest]


class RecordingAdapter(ModelAdapter):
    """An adapter that answers nothing real: it records every request it is given."""

    capabilities = frozenset(Capability)

    def __init__(self, prompt_family: str | None = "llava", plain_prompts: bool = False,
                 model_id: str = "recording") -> None:
        self.requests: list[Request] = []
        self._family = prompt_family
        self.plain_prompts = plain_prompts
        self._model_id = model_id

    @classmethod
    def like(cls, model: ModelAdapter) -> "RecordingAdapter":
        """A recorder that renders prompts as ``model`` would (its family and prompt style)."""
        return cls(model.prompt_family, model.plain_prompts, model.model_id)

    @property
    def prompt_family(self) -> str | None:
        """The family whose templates the modes pick."""
        return self._family

    @property
    def model_id(self) -> str:
        return self._model_id

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.requests.extend(requests)
        return [GenerateResult(text="") for _ in requests]

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        self.requests.extend(requests)
        return [NextTokenResult(logprobs={c: -0.6931 for c in r.candidates}) for r in requests]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.requests.extend(requests)
        return [LoglikelihoodResult(scores=[ContinuationScore(logprob=-1.0, n_tokens=1, n_chars=1)
                                            for _ in r.continuations]) for r in requests]


def record_requests(mode: AnsweringMode, queries: Sequence[Query]) -> list[Request]:
    """The requests ``mode`` sends for ``queries``: exactly one per query, in order.

    Raises ``RuntimeError`` when a mode sends a different number (e.g. a judge that calls the
    model too), because then requests could not be matched to queries.
    """
    recorder = RecordingAdapter()
    mode.answer(recorder, list(queries))
    if len(recorder.requests) != len(queries):
        raise RuntimeError(f"{mode.name} mode sent {len(recorder.requests)} requests for "
                           f"{len(queries)} queries; cannot pair them for training")
    return recorder.requests
