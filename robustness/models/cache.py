"""A content-keyed answer cache around any model adapter, safe to kill and to share.

Every request is keyed by sha256 over the adapter's identity, the request kind, the rendered
prompt (``Prompt.cache_payload()``: messages plus image digests after perturbation) and the
generation settings / candidates / continuations. A rerun, a resumed run or a sweep repeating a
condition is served from disk and never reaches the model.

Storage: one JSON Lines file per adapter identity inside the cache folder. Each batch of new
answers is appended in a single write under an exclusive ``fcntl`` lock, then flushed and
fsynced, so a run killed at any moment leaves at most one truncated last line (skipped on read,
and sealed with a newline by the next writer). Several processes may share a folder: writers
never interleave, and a process re-reads what others appended before it asks the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from robustness.models.base import (
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

try:  # POSIX; elsewhere writers are not serialised across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# Failures that say something about the request itself and would recur; transient ones
# (rate limits, timeouts, server errors) are not stored so a rerun asks again.
PERMANENT_ERRORS = frozenset({"refusal", "content_filter"})

Result = TypeVar("Result", GenerateResult, NextTokenResult, LoglikelihoodResult)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def identity_hash(identity: dict[str, Any]) -> str:
    """sha256 of an adapter identity (canonical JSON)."""
    return hashlib.sha256(_canonical(identity).encode()).hexdigest()


def request_key(identity: dict[str, Any], kind: str, request: Any) -> str:
    """The content key of one request: everything that can change its answer."""
    payload: dict[str, Any] = {"v": CACHE_FORMAT, "identity": identity, "kind": kind,
                               "prompt": request.prompt.cache_payload()}
    if isinstance(request, GenerateRequest):
        payload["settings"] = request.settings.as_dict()
    elif isinstance(request, NextTokenRequest):
        payload["candidates"] = list(request.candidates)
    elif isinstance(request, LoglikelihoodRequest):
        payload["continuations"] = list(request.continuations)
    else:  # pragma: no cover - defensive
        raise TypeError(f"unknown request type {type(request).__name__}")
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Result (de)serialisation


def _usage(raw: Any) -> Usage | None:
    return Usage(**raw) if isinstance(raw, dict) else None


def encode_result(result: Any) -> dict[str, Any]:
    """A JSON-safe dict of a result dataclass (latency and usage kept for cost accounting)."""
    return asdict(result)


def decode_result(kind: str, raw: dict[str, Any]) -> Any:
    """Rebuild the result dataclass of ``kind`` from :func:`encode_result` output."""
    usage = _usage(raw.get("usage"))
    if kind == "generate":
        return GenerateResult(**{**raw, "usage": usage})
    if kind == "next_token_scores":
        return NextTokenResult(**{**raw, "usage": usage})
    if kind == "loglikelihood":
        scores = [ContinuationScore(**s) for s in raw["scores"]]
        return LoglikelihoodResult(**{**raw, "scores": scores, "usage": usage})
    raise ValueError(f"unknown result kind {kind!r}")


def cacheable(result: Any) -> bool:
    """Successful answers and permanent failures are stored; transient failures are not."""
    error = getattr(result, "error", None)
    return error is None or error in PERMANENT_ERRORS


# ---------------------------------------------------------------------------------------------
# The append-only store


class AnswerStore:
    """One JSON Lines file of ``{"k": key, "kind": kind, "r": result}`` records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._records: dict[str, tuple[str, dict[str, Any]]] = {}
        self._offset = 0  # bytes consumed (always just after a newline)
        self.skipped_lines = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> tuple[str, dict[str, Any]] | None:
        return self._records.get(key)

    def refresh(self) -> int:
        """Read complete lines appended since the last read (by any process); returns how many."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        if size <= self._offset:
            return 0
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(size - self._offset)
        end = chunk.rfind(b"\n")
        if end < 0:  # only a partial line so far (a writer in progress or a killed one)
            return 0
        added = 0
        for line in chunk[: end + 1].splitlines():
            if self._ingest(line):
                added += 1
        self._offset += end + 1
        return added

    def _ingest(self, line: bytes) -> bool:
        if not line.strip():
            return False
        try:
            rec = json.loads(line)
            key, kind, result = rec["k"], rec["kind"], rec["r"]
        except (ValueError, KeyError, TypeError):
            self.skipped_lines += 1  # a line cut short by a kill, sealed by a later writer
            return False
        if not isinstance(result, dict) or not isinstance(key, str):
            self.skipped_lines += 1
            return False
        self._records.setdefault(key, (kind, result))  # first answer wins; later copies are equal
        return True

    def append(self, records: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Append ``(key, kind, result)`` records durably: one locked write, flush, fsync."""
        if not records:
            return
        data = "".join(_canonical({"k": k, "kind": kind, "r": r}) + "\n" for k, kind, r in records)
        with open(self.path, "a+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":  # a killed writer left half a line: seal it off
                        fh.seek(0, os.SEEK_END)
                        fh.write(b"\n")
                fh.seek(0, os.SEEK_END)
                fh.write(data.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        for key, kind, result in records:
            self._records.setdefault(key, (kind, result))


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return slug[-48:] or "model"


@dataclass
class CacheStats:
    """Requests served from disk (hits) vs. sent to the model (misses), and model calls."""

    hits: int = 0
    misses: int = 0
    calls: int = 0
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
        self._identity = adapter.identity()
        digest = identity_hash(self._identity)
        self.path = Path(cache_dir) / f"{_slug(str(adapter.model_id))}-{digest[:16]}.jsonl"
        self.store = AnswerStore(self.path) if enabled else None
        self.cache_stats = CacheStats()

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
        return self._serve("loglikelihood", requests, self.inner.loglikelihood)

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
                usage = getattr(result, "usage", None)
                if usage is not None:
                    self.cache_stats.input_tokens += int(usage.input_tokens or 0)
                    self.cache_stats.output_tokens += int(usage.output_tokens or 0)
            return fresh
        keys = [request_key(self._identity, kind, r) for r in requests]
        if any(k not in self.store for k in keys):
            self.store.refresh()  # another process sharing the folder may have answered them
        results: list[Any] = [None] * len(requests)
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self.store.get(key)
            if hit is not None and hit[0] == kind:
                results[i] = decode_result(kind, hit[1])
                self.cache_stats.hits += 1
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            first = [positions[0] for positions in todo.values()]
            fresh = list(compute([requests[i] for i in first]))
            self.cache_stats.calls += 1
            if len(fresh) != len(first):
                raise RuntimeError(f"{type(self.inner).__name__}.{kind} returned {len(fresh)} "
                                   f"results for {len(first)} requests")
            self.cache_stats.misses += len(first)
            new_records = []
            for (key, positions), result in zip(todo.items(), fresh):
                usage = getattr(result, "usage", None)
                if usage is not None:
                    self.cache_stats.input_tokens += int(usage.input_tokens or 0)
                    self.cache_stats.output_tokens += int(usage.output_tokens or 0)
                for i in positions:
                    results[i] = result
                if cacheable(result):
                    new_records.append((key, kind, encode_result(result)))
            self.store.append(new_records)
            self.cache_stats.hits += sum(len(p) - 1 for p in todo.values())  # in-call duplicates
        return results
