"""GD mode: compare the model's next-token probabilities of the option letters.

Each letter's probability merges its tokenizer spellings (``A``, `` A``, ``▁A``, ``ĠA``: the
adapter returns the log-sum-exp of their log-probabilities); the mode then takes a softmax over
the letters and picks the larger. Exact ties and failed calls are invalid. GD reads the very
first answer token, so it cannot serve chain-of-thought prompts.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from robustness.data.types import OPTION_LABELS, Choice
from robustness.errors import ConfigError
from robustness.models.base import Capability, ModelAdapter, NextTokenRequest
from robustness.modes.base import ScoreKind
from robustness.modes.common import TemplatedMode, argmax_label, make_answer
from robustness.data.query import Answer, Query


def softmax(logprobs: Mapping[str, float]) -> dict[str, float]:
    """Probabilities over the candidates from (unnormalised) log-probabilities."""
    finite = [v for v in logprobs.values() if math.isfinite(v)]
    if not finite:
        return {k: 0.0 for k in logprobs}
    top = max(finite)
    exps = {k: (math.exp(v - top) if math.isfinite(v) else 0.0) for k, v in logprobs.items()}
    total = sum(exps.values())
    return {k: e / total for k, e in exps.items()}


# toolkit: spellings merged, exact ties invalid; official: the paper's do_forward (the logits of
# tokenizer.encode("A") and encode("B"), argmax, a tie going to A)
LETTER_RULES = ("toolkit", "official")


def official_letter(logprobs: Mapping[str, float]) -> Choice:
    """The official GD choice: the larger letter score, A on a tie (``argmax`` of [A, B])."""
    a, b = logprobs.get("A", -math.inf), logprobs.get("B", -math.inf)
    if not (math.isfinite(a) or math.isfinite(b)):
        return None
    return "A" if a >= b else "B"


class GreedyDecodingMode(TemplatedMode):
    """Next-token letter scores → softmax over the option letters → argmax."""

    name = "gd"
    capability = Capability.NEXT_TOKEN_SCORES
    score_kind = ScoreKind.LETTER

    def __init__(self, templates: Mapping[str, str] | None = None,
                 plain_templates: Mapping[str, str] | None = None,
                 family_templates: Mapping[str, Mapping[str, str]] | None = None,
                 letter_rule: str = "toolkit") -> None:
        super().__init__(templates, plain_templates, family_templates)
        if letter_rule not in LETTER_RULES:
            raise ConfigError(f"mode.letter_rule: {letter_rule!r} is not one of "
                              f"{', '.join(LETTER_RULES)}")
        self.letter_rule = letter_rule
        self.spelling = "encoded" if letter_rule == "official" else "variants"

    def check(self, adapter: ModelAdapter) -> None:
        super().check(adapter)
        if self.spelling not in adapter.spellings:
            raise ConfigError(f"mode.letter_rule=official reads the logit of "
                              f"tokenizer.encode(letter); model {adapter.model_id} has no "
                              "tokenizer here (use letter_rule=toolkit)")

    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        prompts = self.build_prompts(adapter, queries)
        letters = tuple(OPTION_LABELS)
        results = adapter.next_token_scores([NextTokenRequest(p, letters, self.spelling)
                                             for p in prompts])
        answers = []
        for query, result in zip(queries, results):
            if result.error:
                answers.append(make_answer(query, None, {"error_detail": result.error_detail},
                                           result.latency_s, result.usage, error=result.error))
                continue
            probs = softmax(result.logprobs)
            raw: dict[str, Any] = {
                "letter_logprobs": dict(result.logprobs),  # full-vocabulary, variants merged
                "letter_probs": probs,  # softmax over the letters
                "letter_mass": sum(math.exp(v) for v in result.logprobs.values()
                                   if math.isfinite(v)),
            }
            displayed = (official_letter(result.logprobs) if self.letter_rule == "official"
                         else argmax_label(result.logprobs))
            answers.append(make_answer(query, displayed, raw, result.latency_s, result.usage))
        return answers

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "letter_rule": self.letter_rule}
