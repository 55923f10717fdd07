"""FF mode: the model answers in free text (no options shown); a judge maps it to an option.

The judge scores the answer's closeness to each option on 1–10 and the paper's threshold rule
picks A (score(A) ≥ score(B) + threshold), B, or invalid. The answer text, the judge's raw
reply and its scores are all kept in ``Answer.raw``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from robustness.data.types import OPTION_LABELS
from robustness.errors import ConfigError
from robustness.models.base import Capability, GenerateRequest, GenerationSettings, ModelAdapter
from robustness.modes.base import AdapterWrap, ScoreKind
from robustness.modes.common import TemplatedMode, make_answer
from robustness.modes.judge import PAPER_THRESHOLD, Judge, JudgeItem, LexicalJudge, threshold_choice
from robustness.data.query import Answer, FewShotExample, Query


class FreeFormMode(TemplatedMode):
    """Free generation, then a judge (any model adapter, or the offline lexical judge)."""

    name = "ff"
    capability = Capability.GENERATE
    score_kind = ScoreKind.OPTION

    def __init__(self, judge: Judge | None = None, threshold: float = PAPER_THRESHOLD,
                 templates: Mapping[str, str] | None = None,
                 plain_templates: Mapping[str, str] | None = None,
                 family_templates: Mapping[str, Mapping[str, str]] | None = None,
                 max_new_tokens: int = 128, cot_max_new_tokens: int = 512,
                 temperature: float = 0.0) -> None:
        super().__init__(templates, plain_templates, family_templates)
        if judge is None:
            judge = LexicalJudge()
        if not isinstance(judge, Judge):
            raise ConfigError("mode.judge: must build a Judge (ModelJudge or LexicalJudge)")
        if threshold <= 0:
            raise ConfigError(f"mode.threshold: must be positive, got {threshold}")
        self.judge = judge
        self.threshold = threshold
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature)
        self.cot_settings = GenerationSettings(max_new_tokens=cot_max_new_tokens,
                                               temperature=temperature)

    def check(self, adapter: ModelAdapter) -> None:
        super().check(adapter)
        self.judge.check()

    def auxiliary_adapters(self) -> Mapping[str, ModelAdapter]:
        return self.judge.adapters()

    def wrap_auxiliary(self, wrap: AdapterWrap) -> None:
        self.judge.wrap_adapters(wrap)

    def example_answer(self, example: FewShotExample) -> str:
        return example.options[OPTION_LABELS.index(example.answer)]

    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        prompts = self.build_prompts(adapter, queries)
        results = adapter.generate([
            GenerateRequest(p, self.cot_settings if q.strategy == "cot" else self.settings)
            for p, q in zip(prompts, queries)])
        verdicts = self.judge.judge([
            JudgeItem(question=q.question, options=tuple(q.options),
                      response=None if r.error else r.text)
            for q, r in zip(queries, results)])
        answers = []
        for query, result, verdict in zip(queries, results, verdicts):
            raw: dict[str, Any] = {
                "text": result.text,
                "judge": {"name": self.judge.name, "raw": verdict.raw, "scores": verdict.scores,
                          "error": verdict.error, **verdict.extra},
                "threshold": self.threshold,
            }
            usage = result.usage
            if verdict.usage is not None:
                raw["judge"]["usage"] = {"input_tokens": verdict.usage.input_tokens,
                                         "output_tokens": verdict.usage.output_tokens}
            latency = result.latency_s + verdict.latency_s
            if result.error:
                raw["error_detail"] = result.error_detail
                answers.append(make_answer(query, None, raw, latency, usage, error=result.error))
                continue
            displayed = threshold_choice(verdict.scores, self.threshold)
            # a judge backend failure is an error of this answer; an unreadable reply is invalid
            error = verdict.error if verdict.error not in (None, "judge_unparseable") else None
            answers.append(make_answer(query, displayed, raw, latency, usage,
                                       error=f"judge_{error}" if error else None))
        return answers

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "threshold": self.threshold,
                "settings": self.settings.as_dict(), "judge": self.judge.identity()}

