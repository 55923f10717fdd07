"""What the four answering modes share: templated prompts, strategy checks, answer records."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from robustness.data.types import Choice
from robustness.errors import ConfigError
from robustness.models.base import ModelAdapter, Prompt, Usage
from robustness.modes.base import AnsweringMode
from robustness.modes.prompts import PromptBuilder
from robustness.data.query import Answer, FewShotExample, Query


class TemplatedMode(AnsweringMode):
    """A mode whose prompts come from per-strategy, per-family templates (``conf/mode/``)."""

    def __init__(self, templates: Mapping[str, str] | None = None,
                 plain_templates: Mapping[str, str] | None = None,
                 family_templates: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.prompts = PromptBuilder(self.name, templates, plain_templates, family_templates)

    def serves(self, strategy: str) -> bool:
        return self.prompts.supports(strategy)

    def check_strategy(self, strategy: str) -> None:
        if strategy == "cot" and not self.serves(strategy):
            raise ConfigError(f"{self.name.upper()} mode cannot serve the {strategy!r} prompting "
                              "strategy (it reads the answer from scores, not from reasoning)")
        super().check_strategy(strategy)

    def example_answer(self, example: FewShotExample) -> str:
        """The assistant's reply in a few-shot example (the letter, unless a mode differs)."""
        return example.answer

    def build_prompts(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Prompt]:
        for strategy in dict.fromkeys(q.strategy for q in queries):
            self.check_strategy(strategy)
        family, plain = adapter.prompt_family, adapter.plain_prompts
        return [self.prompts.build(q, family, self.example_answer, plain) for q in queries]

    def identity(self) -> dict[str, Any]:
        return {"mode": self.name, "templates": self.prompts.templates,
                "plain_templates": self.prompts.plain_templates,
                "family_templates": self.prompts.family_templates}


def usage_dict(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def make_answer(query: Query, displayed: Choice, raw: dict[str, Any], latency_s: float,
                usage: Usage | None = None, error: str | None = None) -> Answer:
    """An :class:`Answer` with the displayed choice mapped back to original labels."""
    u = usage_dict(usage)
    if u is not None:
        raw = {**raw, "usage": u}
    if error is not None:
        displayed = None
    return Answer(pair_id=query.pair_id, image_index=query.image_index,
                  choice=query.to_original(displayed), displayed_choice=displayed, raw=raw,
                  latency_s=latency_s, error=error)


def argmax_label(scores: Mapping[str, float]) -> Choice:
    """The label with the strictly highest finite score; ties and non-finite scores → None."""
    finite = {k: v for k, v in scores.items() if v == v and v not in (float("inf"), float("-inf"))}
    if not finite:
        return None
    best = max(finite.values())
    winners = [k for k, v in finite.items() if v == best]
    return winners[0] if len(winners) == 1 else None  # type: ignore[return-value]
