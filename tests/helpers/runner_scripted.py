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
import signal
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


class _InterruptInFinaliser:
    """Sends this process SIGINT from its own ``__del__`` (see ``sigint_in_finaliser_at``)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))  # the handler runs here, inside the finaliser


class ScriptedAdapter(ModelAdapter):
    """Answers from a content hash; ``bias_a`` (0..1) makes it prefer displayed option A.

    ``delay_s`` sleeps per request (to kill a run midway); ``count_file`` appends one line per
    request asked (to count requests across processes); ``sigint_in_finaliser_at`` sends this
    process SIGINT from inside an object's ``__del__`` on that model call, where Python prints
    the KeyboardInterrupt as "Exception ignored" and drops it (a Ctrl-C landing badly).
    """

    capabilities = frozenset({Capability.GENERATE, Capability.NEXT_TOKEN_SCORES,
                              Capability.LOGLIKELIHOOD})

    def __init__(self, name: str = "scripted", bias_a: float = 0.0, delay_s: float = 0.0,
                 count_file: str | None = None, revision: str = "1",
                 prices: dict | None = None, sigint_in_finaliser_at: int = 0) -> None:
        self.name, self.bias_a, self.delay_s, self.revision = name, bias_a, delay_s, revision
        if prices is not None:
            self.prices = dict(prices)
        self.count_file = Path(count_file) if count_file else None
        self.requests = 0
        self.calls = 0
        self.sigint_in_finaliser_at = sigint_in_finaliser_at

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
        if self.calls == self.sigint_in_finaliser_at:
            _InterruptInFinaliser()  # created and collected at once: its __del__ runs here

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


# --------------------------------------------------------------------------- a scripted mode

from robustness.models.base import Prompt, text_message  # noqa: E402
from robustness.modes.base import AnsweringMode  # noqa: E402
from robustness.data.query import Answer, Query  # noqa: E402


class ScriptedLetterMode(AnsweringMode):
    """A minimal MC-style mode for runner tests: options listed with letters, letter parsed."""

    name = "scripted_mc"

    def render(self, q: Query) -> Prompt:
        text = f"{q.question}\nA. {q.options[0]}\nB. {q.options[1]}\nstrategy={q.strategy}"
        return Prompt(messages=(text_message("user", text, with_image=True),), images=(q.image,))

    def answer(self, adapter: ModelAdapter, queries: Sequence[Query]) -> list[Answer]:
        results = adapter.generate([GenerateRequest(self.render(q)) for q in queries])
        out = []
        for q, r in zip(queries, results):
            letter = r.text.rsplit(" ", 1)[-1] if r.text else None
            displayed = letter if letter in ("A", "B") else None
            out.append(Answer(pair_id=q.pair_id, image_index=q.image_index,
                              choice=q.to_original(displayed), displayed_choice=displayed,
                              raw={"text": r.text, "usage": {"input_tokens": 10,
                                                              "output_tokens": 3}},
                              error=r.error))
        return out


def write_benchmark(folder: Path, n_pairs: int = 12) -> Path:
    """A MediConfusion-format folder (dataset.json + images/*.png) with random images."""
    import numpy as np
    from PIL import Image

    cats = ["Cerebral", "Vascular", "Pulmonary"]
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    data = {}
    for i in range(n_pairs):
        a, b = 2 * i + 1, 2 * i + 2
        for local in (a, b):
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(
                images / f"{local}.png")
        flip = i % 2 == 0
        data[str(1000 + i)] = {
            "im_1": f"r/{a}.jpg", "im_2": f"r/{b}.jpg", "im_1_local": a, "im_2_local": b,
            "cap_1": "c1", "cap_2": "c2", "category_1": [cats[i % 3]], "category_2": [cats[i % 3]],
            "BiomedCLIP_sim": 0.9, "DINO_sim": 0.5, "question": f"Is there a finding {i}?",
            "option_A": "present", "option_B": "absent",
            "im_1_correct": "A" if flip else "B", "im_2_correct": "B" if flip else "A",
            "AI_question": "Finding?", "AI_option_A": "yes", "AI_option_B": "no",
        }
    (folder / "dataset.json").write_text(json.dumps(data))
    return folder
