"""A content-keyed answer cache around any model adapter, safe to kill and to share.

Every request is keyed by sha256 over the adapter's identity, the request kind, the rendered
prompt (``Prompt.cache_payload()``: messages plus image digests after perturbation) and the
generation settings / candidates / continuations. A rerun, a resumed run or a sweep repeating a
condition is served from disk and never reaches the model.

Storage: one JSON Lines file per adapter identity inside the cache folder
(:mod:`robustness.models.answer_store`: locked, fsynced appends; unreadable lines are misses).
Several processes may share a folder: before asking, a process claims the missing keys
(:mod:`robustness.models.leases`), so keys another live process is asking are waited for and
read from the file, never asked twice; a dead process's claims expire.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from robustness.models.answer_store import AnswerStore, canonical, decode_result, encode_result
from robustness.models.base import (
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelAdapter,
    NextTokenRequest,
    NextTokenResult,
)
from robustness.models.leases import LeaseBoard

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# Failures that say something about the request itself and would recur; transient ones
# (rate limits, timeouts, server errors) are not stored so a rerun asks again.
PERMANENT_ERRORS = frozenset({"refusal", "content_filter"})

Result = TypeVar("Result", GenerateResult, NextTokenResult, LoglikelihoodResult)


def identity_hash(identity: dict[str, Any]) -> str:
    """sha256 of an adapter identity (canonical JSON)."""
    return hashlib.sha256(canonical(identity).encode()).hexdigest()


def request_key(identity: dict[str, Any], kind: str, request: Any) -> str:
    """The content key of one request: everything that can change its answer."""
    payload: dict[str, Any] = {"v": CACHE_FORMAT, "identity": identity, "kind": kind,
                               "prompt": request.prompt.cache_payload()}
    if isinstance(request, GenerateRequest):
        payload["settings"] = request.settings.as_dict()
    elif isinstance(request, NextTokenRequest):
        payload["candidates"] = list(request.candidates)
        if request.spelling != "variants":  # the default keeps earlier keys valid
            payload["spelling"] = request.spelling
    elif isinstance(request, LoglikelihoodRequest):
        payload["continuations"] = list(request.continuations)
    else:  # pragma: no cover - defensive
        raise TypeError(f"unknown request type {type(request).__name__}")
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def cacheable(result: Any) -> bool:
    """Successful answers and permanent failures are stored; transient failures are not."""
    error = result.error
    return error is None or error in PERMANENT_ERRORS


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return slug[-48:] or "model"


@dataclass
class CacheStats:
    """Requests served from disk (hits) vs. sent to the model (misses), and model calls."""

    hits: int = 0
    misses: int = 0
    calls: int = 0
    waited: int = 0  # hits another process was asking when we needed them (we waited)
    input_tokens: int = 0  # usage reported by the model for the misses (what this run spent)
    output_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CachedAdapter(ModelAdapter):
    """Wraps any adapter: answers come from the cache when the same request was answered before.

    Misses of one call are sent to the wrapped adapter as one list (so it can still batch),
    identical requests within a call are sent once, and new answers are appended durably before
    they are returned. ``inner`` is the wrapped adapter, ``cache_stats`` counts this process's
    hits and misses, ``path`` is the cache file; the adapter's declared attributes pass through.
    """

    def __init__(self, adapter: ModelAdapter, cache_dir: str | Path, *, enabled: bool = True) -> None:
        self.inner = adapter
        self.enabled = enabled
        self.capabilities = adapter.capabilities
        self.spellings = adapter.spellings
        self._identity = adapter.identity()
        digest = identity_hash(self._identity)
        self.path = Path(cache_dir) / f"{_slug(str(adapter.model_id))}-{digest[:16]}.jsonl"
        self.store = AnswerStore(self.path) if enabled else None
        self.leases = LeaseBoard(self.path) if enabled else None
        self.cache_stats = CacheStats()

    @property
    def skipped_lines(self) -> int:
        """Lines of the cache file that could not be read as answers (treated as misses)."""
        return self.store.skipped_lines if self.store is not None else 0

    # --- identity passes through: the cache changes no answer -------------------------------
    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    @property
    def prompt_family(self) -> str | None:  # type: ignore[override]
        return self.inner.prompt_family

    @property
    def plain_prompts(self) -> bool:  # type: ignore[override]
        return self.inner.plain_prompts

    @property
    def prices(self) -> Mapping[str, float] | None:  # type: ignore[override]
        return self.inner.prices

    def stats(self) -> dict[str, Any] | None:
        return self.inner.stats()

    def estimate_tokens(self, prompt: Any, max_output: int) -> float | None:
        return self.inner.estimate_tokens(prompt, max_output)

    def unwrap(self) -> ModelAdapter:
        return self.inner.unwrap()

    def close(self) -> None:
        self.inner.close()

    # --- the three request kinds --------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return self._serve("generate", requests, self.inner.generate)

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        return self._serve("next_token_scores", requests, self.inner.next_token_scores)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Options are scored independently, so a request is keyed and asked with its
        continuations in sorted order and its scores put back in the order asked: the same
        question with its options swapped (PS under ``option_swap``) is a cache hit."""
        orders = [sorted(range(len(r.continuations)), key=lambda i, r=r: r.continuations[i])
                  for r in requests]
        canonical_requests = [replace(r, continuations=tuple(r.continuations[i] for i in order))
                              for r, order in zip(requests, orders)]
        results = self._serve("loglikelihood", canonical_requests, self.inner.loglikelihood)
        out = []
        for result, order in zip(results, orders):
            if result.scores and len(result.scores) == len(order):
                back = [None] * len(order)
                for sorted_pos, original in enumerate(order):
                    back[original] = result.scores[sorted_pos]
                result = replace(result, scores=back)
            out.append(result)
        return out

    def _serve(self, kind: str, requests: Sequence[Any],
               compute: Callable[[Sequence[Any]], list[Any]]) -> list[Any]:
        requests = list(requests)
        if not requests:
            return []
        if self.store is None:
            fresh = list(compute(requests))
            self.cache_stats.misses += len(requests)
            self.cache_stats.calls += 1
            for result in fresh:
                usage = result.usage
                if usage is not None:
                    self.cache_stats.input_tokens += int(usage.input_tokens or 0)
                    self.cache_stats.output_tokens += int(usage.output_tokens or 0)
            return fresh
        keys = [request_key(self._identity, kind, r) for r in requests]
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            pending.setdefault(key, []).append(i)
        if any(k not in self.store for k in pending):
            self.store.refresh()  # another process sharing the folder may have answered them
        results: list[Any] = [None] * len(requests)
        waiting, poll = frozenset(), 0.02
        while pending:
            for key in list(pending):
                hit = self.store.get(key)
                if hit is not None and hit[0] == kind:
                    positions = pending.pop(key)
                    for i in positions:
                        results[i] = decode_result(kind, hit[1])
                    self.cache_stats.hits += len(positions)
                    self.cache_stats.waited += len(positions) if key in waiting else 0
            if not pending:
                break
            lease, waiting = self.leases.claim(pending)
            if lease is not None:
                try:
                    self._compute(kind, requests, {k: pending.pop(k) for k in lease.keys},
                                  compute, results)
                finally:
                    lease.release()
            if pending:  # keys another live process is asking: read its answers when stored
                time.sleep(poll)
                poll = min(poll * 2, 0.5)
                self.store.refresh()
        return results

    def _compute(self, kind: str, requests: list[Any], todo: dict[str, list[int]],
                 compute: Callable[[Sequence[Any]], list[Any]], results: list[Any]) -> None:
        """Ask the model once per key of ``todo``, store what is cacheable, fill ``results``."""
        first = [positions[0] for positions in todo.values()]
        fresh = list(compute([requests[i] for i in first]))
        self.cache_stats.calls += 1
        if len(fresh) != len(first):
            raise RuntimeError(f"{type(self.inner).__name__}.{kind} returned {len(fresh)} "
                               f"results for {len(first)} requests")
        self.cache_stats.misses += len(first)
        new_records = []
        for (key, positions), result in zip(todo.items(), fresh):
            usage = result.usage
            if usage is not None:
                self.cache_stats.input_tokens += int(usage.input_tokens or 0)
                self.cache_stats.output_tokens += int(usage.output_tokens or 0)
            for i in positions:
                results[i] = result
            if cacheable(result):
                new_records.append((key, kind, encode_result(result)))
        self.store.append(new_records)
        self.cache_stats.hits += sum(len(p) - 1 for p in todo.values())  # in-call duplicates

