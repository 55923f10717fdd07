"""Rendering a :class:`Query` into a chat :class:`Prompt`, honouring every query field.

Templates are per mode and strategy (``direct``; ``cot`` where the mode can use reasoning):
``templates`` for chat models, ``plain_templates`` for models whose adapter declares plain-text
prompts (BLIP-2's ``Question: ... Answer:`` format), and optional ``family_templates`` overriding
both for one family. Placeholders: ``{question}``, ``{option_A}``, ``{option_B}`` (displayed
order). The wording lives in the mode YAMLs under ``conf/mode/`` only (the paper's
``configs/prompts/answering.json``; ``tests/fixtures/paper_prompts.json`` pins it).

Strategies: ``direct`` (the template), ``cot`` (the mode's reasoning template, ending with
"Answer: <letter>"), ``few_shot`` (prior user/assistant turns built from ``Query.few_shot``,
each with its image), ``persona`` (the direct template under ``Query.system_prompt``). A
``system_prompt`` set on any query is sent as the system turn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from robustness.data.types import OPTION_LABELS
from robustness.errors import ConfigError
from robustness.data.image import ImageInput
from robustness.models.base import ChatMessage, Prompt, text_message
from robustness.modes.base import KNOWN_STRATEGIES as STRATEGIES
from robustness.data.query import FewShotExample, Query

# The paper's system prompt ("init_prompts.default", its spelling kept) used by `persona`.
PAPER_PERSONA = "You are a helpful assitant expert in medical domain."

_PROBE_FIELDS = {"question": "q", "option_A": "a", "option_B": "b"}


def _check_template(where: str, template: str) -> str:
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{where}: a non-empty template string is required")
    try:
        template.format(**_PROBE_FIELDS)
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(f"{where}: bad placeholder {err} (use {{question}}, {{option_A}}, "
                          "{option_B}; double literal braces)") from None
    return template


class PromptBuilder:
    """Renders queries for one mode from its templates (per strategy, per family)."""

    def __init__(self, mode: str, templates: Mapping[str, str] | None,
                 plain_templates: Mapping[str, str] | None = None,
                 family_templates: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.mode = mode
        if not templates or "direct" not in templates:
            raise ConfigError(f"mode {mode}: templates.direct is required")
        self.templates = self._checked("templates", templates)
        self.plain_templates = self._checked("plain_templates", plain_templates or {})
        self.family_templates = {f: self._checked(f"family_templates.{f}", t)
                                 for f, t in dict(family_templates or {}).items()}

    def _checked(self, where: str, templates: Mapping[str, str]) -> dict[str, str]:
        return {k: _check_template(f"mode {self.mode}: {where}.{k}", v)
                for k, v in dict(templates).items()}

    def supports(self, strategy: str) -> bool:
        return strategy in STRATEGIES and (strategy != "cot" or "cot" in self.templates)

    def template(self, strategy: str, family: str | None, plain: bool = False) -> str:
        """The template for ``strategy``: the family's own, else the plain-prompt one for
        adapters that declare plain prompts, else the chat one."""
        kind = "cot" if strategy == "cot" else "direct"
        override = self.family_templates.get(family or "", {})
        if kind in override:
            return override[kind]
        if plain and kind in self.plain_templates:
            return self.plain_templates[kind]
        return self.templates[kind]

    def text(self, template: str, question: str, options: Sequence[str]) -> str:
        fields = {f"option_{label}": opt for label, opt in zip(OPTION_LABELS, options)}
        return template.format(question=question, **fields)

    def build(self, query: Query, family: str | None,
              example_answer: Callable[[FewShotExample], str], plain: bool = False) -> Prompt:
        """The chat prompt for ``query``: optional system turn, few-shot turns, the question."""
        if query.strategy not in STRATEGIES:
            raise ConfigError(f"unknown prompting strategy {query.strategy!r} "
                              f"(known: {', '.join(STRATEGIES)})")
        template = self.template(query.strategy, family, plain)
        messages: list[ChatMessage] = []
        images: list[ImageInput] = []
        system = query.system_prompt
        if query.strategy == "persona" and not system:
            system = PAPER_PERSONA
        if system:
            messages.append(text_message("system", system))
        if query.strategy == "few_shot":
            if not query.few_shot:
                raise ConfigError("strategy few_shot needs Query.few_shot examples")
            for ex in query.few_shot:
                if ex.source_pair_id == query.pair_id:
                    raise ValueError(f"few-shot example from the asked pair {query.pair_id}")
                messages.append(text_message("user", self.text(template, ex.question, ex.options),
                                             with_image=True))
                images.append(ex.image)
                messages.append(text_message("assistant", example_answer(ex)))
        messages.append(text_message("user", self.text(template, query.question, query.options),
                                     with_image=True))
        images.append(query.image)
        return Prompt(messages=tuple(messages), images=tuple(images))


@dataclass(frozen=True)
class PromptStrategy:
    """A run's base prompting strategy (``conf/prompt/NAME.yaml``), applied to clean queries.

    ``few_shot`` needs worked examples from other pairs, which only the caller can pick (it
    sees the benchmark): pass them to :meth:`apply` (e.g. from the ``few_shot`` probe's
    seeded selection)."""

    strategy: str = "direct"
    system_prompt: str | None = None
    few_shot_k: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"prompt.strategy: unknown strategy {self.strategy!r} "
                              f"(known: {', '.join(STRATEGIES)})")
        if self.strategy == "few_shot" and self.few_shot_k < 1:
            raise ConfigError("prompt.few_shot_k: few_shot needs at least one example")

    @property
    def name(self) -> str:
        return self.strategy

    def apply(self, query: Query, examples: Sequence[FewShotExample] = ()) -> Query:
        """``query`` under this strategy."""
        system = self.system_prompt
        if self.strategy == "persona" and not system:
            system = PAPER_PERSONA
        few_shot = query.few_shot
        if self.strategy == "few_shot":
            few_shot = tuple(examples)[: self.few_shot_k]
            if len(few_shot) < self.few_shot_k:
                raise ConfigError(f"prompt few_shot: {self.few_shot_k} examples from other pairs "
                                  f"are needed, {len(few_shot)} given (select them with the "
                                  "few_shot probe)")
        return replace(query, strategy=self.strategy,
                       system_prompt=system or query.system_prompt, few_shot=few_shot)
