"""A scripted model for the runner's own tests: deterministic answers, call counting, delays.

It answers from a hash of the request content (prompt text + image digests), so answers change
when a probe changes the image or the option order, exactly as the cache key does, and it
counts every request it is asked, so tests can prove a rerun asks nothing. It is not a model of
anything; tests of real models use the tiny models and the reference checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Sequence

from robustness.models.base import (
    Capability,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelAdapter,
    NextTokenRequest,
    NextTokenResult,
    Usage,
)


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, default=str).encode()).digest()[:8], "little")


class ScriptedAdapter(ModelAdapter):
    """Answers from a content hash; ``bias_a`` (0..1) makes it prefer displayed option A.

    ``delay_s`` sleeps per request (to kill a run midway); ``count_file`` appends one line per
    request asked (to count requests across processes).
    """

    capabilities = frozenset({Capability.GENERATE, Capability.NEXT_TOKEN_SCORES,
                              Capability.LOGLIKELIHOOD})

    def __init__(self, name: str = "scripted", bias_a: float = 0.0, delay_s: float = 0.0,
                 count_file: str | None = None, revision: str = "1") -> None:
        self.name, self.bias_a, self.delay_s, self.revision = name, bias_a, delay_s, revision
        self.count_file = Path(count_file) if count_file else None
        self.requests = 0
        self.calls = 0

    @property
    def model_id(self) -> str:
        return f"scripted/{self.name}"

    def identity(self) -> dict:
        return {"model_id": self.model_id, "revision": self.revision, "bias_a": self.bias_a}

    def _count(self, n: int) -> None:
        self.requests += n
        self.calls += 1
        if self.count_file is not None:
            with open(self.count_file, "a") as fh:
                fh.write(f"{os.getpid()} {n}\n")
        if self.delay_s:
            time.sleep(self.delay_s * n)

    def _letter(self, request) -> str:
        payload = request.prompt.cache_payload()
        value = _h(payload) % 1000 / 1000
        if value < self.bias_a:
            return "A"
        return "A" if _h(payload, "x") % 2 == 0 else "B"

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self._count(len(requests))
        return [GenerateResult(text=f"Answer: {self._letter(r)}", latency_s=0.001,
                               usage=Usage(input_tokens=10, output_tokens=3)) for r in requests]

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        self._count(len(requests))
        out = []
        for r in requests:
            letter = self._letter(r)
            out.append(NextTokenResult(logprobs={c: (-0.1 if c == letter else -2.5)
                                                 for c in r.candidates}))
        return out

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self._count(len(requests))
        return [LoglikelihoodResult(scores=[ContinuationScore(-float(_h(r.prompt.cache_payload(), c) % 100) / 10,
                                                              len(c.split()), len(c))
                                            for c in r.continuations]) for r in requests]
