"""PS mode: the likelihood of each option's text as the model's answer.

Normalisation (``normalize``): ``per_token`` (default, the paper's rule: the geometric mean of
the answer's token probabilities, i.e. mean token log-probability), ``sum`` (total
log-probability, favours short options) or ``per_char`` (log-probability per character,
comparable across tokenizers). The adapter computes the shared prompt once per question. PS
scores the first answer tokens directly, so it cannot serve chain-of-thought prompts.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from robustness.data.types import OPTION_LABELS
from robustness.errors import ConfigError
from robustness.models.base import Capability, ContinuationScore, LoglikelihoodRequest, ModelAdapter
from robustness.modes.base import ScoreKind
from robustness.modes.common import TemplatedMode, argmax_label, make_answer
from robustness.data.query import Answer, FewShotExample, Query

NORMALIZATIONS = ("per_token", "sum", "per_char")


def normalised_score(score: ContinuationScore, normalize: str) -> float:
    """An option's score under ``normalize`` (higher is better)."""
    if normalize == "sum":
        return score.logprob
    if normalize == "per_char":
        return score.logprob / max(score.n_chars, 1)
    return score.logprob / max(score.n_tokens, 1)


class PrefixScoringMode(TemplatedMode):
    """Option texts scored as answers; the best normalised log-likelihood wins."""

    name = "ps"
    capability = Capability.LOGLIKELIHOOD
    score_kind = ScoreKind.OPTION

    def __init__(self, templates: Mapping[str, str] | None = None,
                 plain_templates: Mapping[str, str] | None = None,
                 family_templates: Mapping[str, Mapping[str, str]] | None = None,
                 normalize: str = "per_token") -> None:
        super().__init__(templates, plain_templates, family_templates)
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"mode.normalize: {normalize!r} is not one of "
                              f"{', '.join(NORMALIZATIONS)}")
        self.normalize = normalize
        self.option_normalization = normalize

    def example_answer(self, example: FewShotExample) -> str:
        return example.options[OPTION_LABELS.index(example.answer)]

    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        prompts = self.build_prompts(adapter, queries)
        results = adapter.loglikelihood([LoglikelihoodRequest(p, tuple(q.options))
                                         for p, q in zip(prompts, queries)])
        answers = []
        for query, result in zip(queries, results):
            if result.error or len(result.scores) != len(query.options):
                answers.append(make_answer(query, None, {"error_detail": result.error_detail},
                                           result.latency_s, result.usage,
                                           error=result.error or "model_error"))
                continue
            labels = OPTION_LABELS[: len(result.scores)]
            scores = {lab: normalised_score(s, self.normalize)
                      for lab, s in zip(labels, result.scores)}
            raw: dict[str, Any] = {
                "option_scores": scores,
                "normalize": self.normalize,
                "logprob": {lab: s.logprob for lab, s in zip(labels, result.scores)},
                "n_tokens": {lab: s.n_tokens for lab, s in zip(labels, result.scores)},
                "n_chars": {lab: s.n_chars for lab, s in zip(labels, result.scores)},
            }
            answers.append(make_answer(query, argmax_label(scores), raw, result.latency_s,
                                       result.usage))
        return answers

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "normalize": self.normalize}
