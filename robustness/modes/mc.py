"""MC mode: the prompt lists lettered options, the model writes its answer, we parse the letter.

As in the paper: greedy decoding and a short answer (32 new tokens). Chain-of-thought prompts
get a longer budget and are read from their final "Answer: X" (see :mod:`.parsing`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from robustness.models.base import Capability, GenerateRequest, GenerationSettings, ModelAdapter
from robustness.modes.base import ScoreKind
from robustness.modes.common import TemplatedMode, make_answer
from robustness.errors import ConfigError
from robustness.modes.parsing import parse_choice, parse_official

# toolkit: robust letter parsing (parsing.py); official: the paper's clean_up_manual, verbatim
PARSERS = ("toolkit", "official")
from robustness.data.query import Answer, Query


class MultipleChoiceMode(TemplatedMode):
    """Generate, then parse the option letter (A, B or invalid)."""

    name = "mc"
    capability = Capability.GENERATE
    score_kind = ScoreKind.LETTER

    def __init__(self, templates: Mapping[str, str] | None = None,
                 plain_templates: Mapping[str, str] | None = None,
                 family_templates: Mapping[str, Mapping[str, str]] | None = None,
                 max_new_tokens: int = 32, cot_max_new_tokens: int = 512,
                 parser: str = "toolkit") -> None:
        super().__init__(templates, plain_templates, family_templates)
        if parser not in PARSERS:
            raise ConfigError(f"mode.parser: {parser!r} is not one of {', '.join(PARSERS)}")
        self.parser = parser
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens)  # greedy
        self.cot_settings = GenerationSettings(max_new_tokens=cot_max_new_tokens)

    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        prompts = self.build_prompts(adapter, queries)
        requests = [GenerateRequest(p, self.cot_settings if q.strategy == "cot" else self.settings)
                    for p, q in zip(prompts, queries)]
        results = adapter.generate(requests)
        answers = []
        for query, result in zip(queries, results):
            raw: dict[str, Any] = {"text": result.text}
            if result.error:
                raw["error_detail"] = result.error_detail
                answers.append(make_answer(query, None, raw, result.latency_s, result.usage,
                                           error=result.error))
                continue
            if self.parser == "official" and query.strategy != "cot":
                parsed = parse_official(result.text)
            else:
                parsed = parse_choice(result.text, query.options, cot=query.strategy == "cot")
            raw["parse"] = parsed.how
            answers.append(make_answer(query, parsed.choice, raw, result.latency_s, result.usage))
        return answers

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "parser": self.parser, "settings": self.settings.as_dict(),
                "cot_settings": self.cot_settings.as_dict()}
