"""The answer score that saliency explains: the margin of a target option over the other one.

Which score depends on how the mode reads its answer:

Each mode declares which (``AnsweringMode.score_kind``):

* MC and GD read a letter: the score is the letter-logit margin, log p(target letter) −
  log p(other letter) for the next token after the prompt (each letter's tokenizer spellings
  merged by log-sum-exp, exactly as the adapter's ``next_token_scores``). MC renders its own
  prompt (``#answer: ("``), so the margin explains the letter it is about to write.
* PS (and FF, whose judge is not differentiable) read option texts: the score is the
  normalised log-likelihood margin of the target option's text over the other's, with the PS
  mode's normalisation (``per_token`` by default; FF uses ``per_token``).

:class:`AnswerScorer` computes these margins through the adapter's own batched scoring calls,
so it serves any model that exposes scores, gradients or not (occlusion, part attribution).
The white-box twin in :mod:`explain.whitebox` computes the same margin differentiably.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from robustness.data.types import OPTION_LABELS, OptionLabel, other_label
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.models.base import (Capability, LoglikelihoodRequest, ModelAdapter, NextTokenRequest, Prompt)
from robustness.modes.base import AnsweringMode, ScoreKind
from robustness.data.query import Answer, Query

TARGETS = ("chosen", "correct")


def score_kind(mode: AnsweringMode) -> str:
    """``letter`` or ``option``: which margin explains ``mode``'s answer (the mode declares it)."""
    return ScoreKind(mode.score_kind).value


def normalisation(mode: AnsweringMode) -> str:
    """How option log-likelihoods are normalised (the mode declares it: PS's rule, else
    per-token)."""
    return mode.option_normalization


def normalised(logprob: float, n_tokens: int, n_chars: int, normalize: str) -> float:
    """An option's score under ``normalize`` (as :func:`robustness.modes.ps.normalised_score`;
    also on tensors, for the white-box path)."""
    if normalize == "sum":
        return logprob
    if normalize == "per_char":
        return logprob / max(n_chars, 1)
    return logprob / max(n_tokens, 1)


def resolve_target(query: Query, answer: Answer | None, which: str) -> tuple[OptionLabel, str]:
    """The displayed label to explain for ``query`` and where it came from.

    ``chosen``: the option the model chose (an invalid or missing answer falls back to the
    correct one, recorded as ``correct (invalid answer)``); ``correct``: the right option."""
    if which not in TARGETS:
        raise ConfigError(f"explain.target: {which!r} is not one of {', '.join(TARGETS)}")
    if which == "chosen" and answer is not None and answer.displayed_choice in OPTION_LABELS:
        return answer.displayed_choice, "chosen"  # type: ignore[return-value]
    return query.correct, "correct" if which == "correct" else "correct (invalid answer)"


def with_image(query: Query, pixels: np.ndarray) -> Query:
    """``query`` showing ``pixels`` (float or integer, rounded and clipped to uint8)."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return replace(query, image=ImageInput(arr))


class AnswerScorer:
    """Margins of target options through an adapter's batched scoring calls (no gradients).

    ``margins(queries, targets)`` returns one float per query: the score of the target
    (displayed label) minus the score of the other option. Failed backend calls raise, since a
    missing score would silently corrupt an attribution map."""

    def __init__(self, adapter: ModelAdapter, mode: AnsweringMode) -> None:
        self.adapter = adapter
        self.mode = mode
        self.kind = score_kind(mode)
        self.normalize = normalisation(mode)
        need = Capability.NEXT_TOKEN_SCORES if self.kind == "letter" else Capability.LOGLIKELIHOOD
        adapter.require(need, f"saliency of {mode.name.upper()} answers")
        self.calls = 0  # adapter calls made (for budgets and tests)
        self.requests = 0

    def prompts(self, queries: Sequence[Query]) -> list[Prompt]:
        """The prompts the mode renders for ``queries`` (same templates as when answering)."""
        return list(self.mode.build_prompts(self.adapter, queries))

    def option_scores(self, queries: Sequence[Query]) -> list[Mapping[str, float]]:
        """Per query, the score of each displayed label (letter log-probabilities or
        normalised option log-likelihoods)."""
        if not queries:
            return []
        prompts = self.prompts(queries)
        self.calls += 1
        self.requests += len(queries)
        out: list[Mapping[str, float]] = []
        if self.kind == "letter":
            results = self.adapter.next_token_scores(
                [NextTokenRequest(p, tuple(OPTION_LABELS)) for p in prompts])
            for q, r in zip(queries, results):
                if r.error:
                    raise RuntimeError(f"explain: scoring {q.pair_id}/{q.image_index} failed "
                                       f"({r.error}: {r.error_detail})")
                out.append(dict(r.logprobs))
            return out
        results = self.adapter.loglikelihood(
            [LoglikelihoodRequest(p, tuple(q.options)) for p, q in zip(prompts, queries)])
        for q, r in zip(queries, results):
            if r.error or len(r.scores) != len(q.options):
                raise RuntimeError(f"explain: scoring {q.pair_id}/{q.image_index} failed "
                                   f"({r.error}: {r.error_detail})")
            out.append({lab: normalised(s.logprob, s.n_tokens, s.n_chars, self.normalize)
                        for lab, s in zip(OPTION_LABELS, r.scores)})
        return out

    def margins(self, queries: Sequence[Query], targets: Sequence[OptionLabel]) -> np.ndarray:
        """Score of each target minus the other option's score, one adapter call for all."""
        if len(queries) != len(targets):
            raise ValueError("one target per query is needed")
        scores = self.option_scores(queries)
        return np.array([s[t] - s[other_label(t)] for s, t in zip(scores, targets)],
                        dtype=np.float64)
