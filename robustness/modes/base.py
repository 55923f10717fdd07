"""The answering-mode interface: turn queries into answers through a model adapter.

A mode renders each query into a prompt, calls the adapter once for the whole list (so the
backend can batch), and turns the raw output into a choice in the pair's original labels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

from robustness.errors import ConfigError
from robustness.models.base import Capability, ModelAdapter
from robustness.modes.query import Answer, Query

KNOWN_STRATEGIES: tuple[str, ...] = ("direct", "cot", "few_shot", "persona")


class AnsweringMode(ABC):
    """One of the paper's ways to get an answer (MC, GD, PS, FF)."""

    name: str = ""
    capability: Capability = Capability.GENERATE

    def check(self, adapter: ModelAdapter) -> None:
        """Fail at configuration time if ``adapter`` cannot serve this mode."""
        adapter.require(self.capability, f"{self.name.upper()} mode")

    def check_strategy(self, strategy: str) -> None:
        """Fail at configuration time if this mode cannot serve the prompting ``strategy``."""
        if strategy not in KNOWN_STRATEGIES:
            raise ConfigError(f"unknown prompting strategy {strategy!r} "
                              f"(known: {', '.join(KNOWN_STRATEGIES)})")

    @abstractmethod
    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        """Answer every query, in order, with one batched adapter call where possible."""

    def identity(self) -> dict[str, Any]:
        """Settings of the mode that can change an answer (for provenance)."""
        return {"mode": self.name}
