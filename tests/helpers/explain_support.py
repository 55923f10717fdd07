"""Helpers for the saliency tests (no tests here): a black-box adapter with a known score, a small
phantom benchmark with its clean queries, and a tracker that records what it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from robustness.data.mediconfusion import load_benchmark
from robustness.data.types import Benchmark
from robustness.models.base import (Capability, ContinuationScore, LoglikelihoodRequest,
                                    LoglikelihoodResult, ModelAdapter, NextTokenRequest,
                                    NextTokenResult, Prompt)
from robustness.data.query import Answer, Query, clean_queries
from robustness.data.image import ImageInput
from robustness.tracking.base import Tracker


class FormulaAdapter(ModelAdapter):
    """A black-box model whose letter-A log-probability is ``formula(image pixels, prompt text)``
    (letter B scores 0), so attributions have a known answer. No gradients: an API-like model."""

    capabilities = frozenset({Capability.NEXT_TOKEN_SCORES, Capability.LOGLIKELIHOOD})

    def __init__(self, formula: Callable[[np.ndarray, str], float]) -> None:
        self.formula = formula
        self.requests = 0

    @property
    def model_id(self) -> str:
        return "formula"

    def _score(self, prompt: Prompt) -> float:
        text = "\n".join(m.text for m in prompt.messages)
        return float(self.formula(prompt.images[-1].pixels.astype(np.float64), text))

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        self.requests += len(requests)
        return [NextTokenResult(logprobs={"A": self._score(r.prompt), "B": 0.0})
                for r in requests]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.requests += len(requests)
        return [LoglikelihoodResult(scores=[ContinuationScore(self._score(r.prompt), 1, 1),
                                            ContinuationScore(0.0, 1, 1)]) for r in requests]


def phantom_benchmark(folder: Path, pairs: int = 4, size: int = 64) -> Benchmark:
    """A small phantom set written to ``folder`` and loaded with its images (and masks)."""
    from robustness.data.phantom import generate_phantom_benchmark

    path = generate_phantom_benchmark(folder, pairs=pairs, seed=0, size=size)
    return load_benchmark(path, path.parent / "images", require_images=True, name="phantom")


def queries_of(benchmark: Benchmark) -> dict[tuple[str, int], Query]:
    out = {}
    for pair in benchmark:
        images = tuple(ImageInput.open(p) for p in pair.images)  # type: ignore[union-attr]
        for q in clean_queries(pair, images):  # type: ignore[arg-type]
            out[q.key] = q
    return out


def answer(query: Query, displayed: str | None) -> Answer:
    return Answer(pair_id=query.pair_id, image_index=query.image_index,
                  choice=query.to_original(displayed), displayed_choice=displayed)  # type: ignore


class RecordingTracker(Tracker):
    """Keeps every example image and table it is given."""

    def __init__(self) -> None:
        self.examples: dict[str, list] = {}
        self.tables: dict[str, Any] = {}

    def start(self, run: Any) -> None:
        pass

    def log_examples(self, condition: str, examples: Sequence[Any],
                     same_pixels_as: str | None = None) -> None:
        self.examples[condition] = list(examples)

    def log_tables(self, tables: dict[str, Any]) -> None:
        self.tables.update(tables)

    def finish(self, status: str = "ok") -> None:
        pass
