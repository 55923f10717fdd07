"""The answering-mode interface: turn queries into answers through a model adapter.

A mode renders each query into a prompt, calls the adapter once for the whole list (so the
backend can batch), and turns the raw output into a choice in the pair's original labels.
Everything other layers need to know about a mode is declared here (what it scores, which
prompting strategies it serves, which auxiliary adapters it holds), so nobody matches names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import Any, Callable, Mapping, Sequence

from robustness.data.query import Answer, Query
from robustness.errors import ConfigError
from robustness.models.base import Capability, ModelAdapter, Prompt

KNOWN_STRATEGIES: tuple[str, ...] = ("direct", "cot", "few_shot", "persona")
AdapterWrap = Callable[[ModelAdapter], ModelAdapter]


class ScoreKind(str, Enum):
    """Which margin stands for a mode's answer (saliency, attacks, training targets)."""

    LETTER = "letter"  # the answer is a displayed letter: log p(letter) − log p(other letter)
    OPTION = "option"  # the answer is an option text: normalised option log-likelihood margin


class AnsweringMode(ABC):
    """One of the paper's ways to get an answer (MC, GD, PS, FF), or a user's own.

    Subclasses set ``name``, ``capability`` (the adapter request kind it needs) and
    ``score_kind``; they override :meth:`serves` when some strategies make no sense for them,
    :meth:`build_prompts` when they render chat prompts (needed by saliency and training) and
    :meth:`auxiliary_adapters` / :meth:`wrap_auxiliary` when they hold models of their own.
    """

    name: str = ""
    capability: Capability = Capability.GENERATE
    score_kind: ScoreKind = ScoreKind.LETTER
    option_normalization: str = "per_token"  # how option log-likelihoods are compared

    def check(self, adapter: ModelAdapter) -> None:
        """Fail at configuration time if ``adapter`` cannot serve this mode."""
        adapter.require(self.capability, f"{self.name.upper()} mode")

    def serves(self, strategy: str) -> bool:
        """Whether this mode can answer queries asked with prompting ``strategy``."""
        return strategy in KNOWN_STRATEGIES

    def check_strategy(self, strategy: str) -> None:
        """Fail at configuration time if this mode cannot serve the prompting ``strategy``."""
        if strategy not in KNOWN_STRATEGIES:
            raise ConfigError(f"unknown prompting strategy {strategy!r} "
                              f"(known: {', '.join(KNOWN_STRATEGIES)})")
        if not self.serves(strategy):
            raise ConfigError(f"{self.name.upper()} mode cannot serve the {strategy!r} "
                              "prompting strategy")

    def strategies(self) -> tuple[str, ...]:
        """The prompting strategies this mode serves, in the known order."""
        return tuple(s for s in KNOWN_STRATEGIES if self.serves(s))

    @abstractmethod
    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        """Answer every query, in order, with one batched adapter call where possible."""

    def build_prompts(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Prompt]:
        """The prompts this mode sends for ``queries`` (saliency and training replay them)."""
        raise ConfigError(f"mode {self.name!r} does not expose its prompts")

    def auxiliary_adapters(self) -> Mapping[str, ModelAdapter]:
        """Models this mode asks besides the answering model (FF's judge), by role."""
        return {}

    def wrap_auxiliary(self, wrap: AdapterWrap) -> None:
        """Replace each auxiliary adapter by ``wrap(adapter)`` (the runner adds its cache)."""

    def identity(self) -> dict[str, Any]:
        """Settings of the mode that can change an answer (for provenance)."""
        return {"mode": self.name}
