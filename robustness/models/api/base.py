"""What every API adapter shares: keys, limits, retries, the event loop, usage and cost.

A provider subclass implements three small pieces per request kind — build the provider's
payload (``_build``), send it and parse the answer (``_send``), and classify its SDK's exceptions
(``_classify``) — and declares its capabilities. This base runs each batch concurrently on the
API event loop with a bounded number in flight, retries transient failures with backoff,
records token usage, and turns failures that outlast the retries into results carrying
``error`` (the kind) and a redacted ``error_detail``: the run goes on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

from robustness.errors import ConfigError
from robustness.models.api.failures import (TIMEOUT, UNEXPECTED, ApiFailure, MALFORMED,
                                            classify_generic)
from robustness.models.api.images import EncodedImage, ImageEncoder, ImageLimits
from robustness.models.api.limits import RetryPolicy, Throttle, retry_kinds
from robustness.models.api.loop import run_sync
from robustness.models.api.secrets import Secret, resolve_api_key
from robustness.redaction import install_log_redaction, redact_text
from robustness.models.base import (Capability, GenerateRequest, GenerateResult,
                                    LoglikelihoodRequest, LoglikelihoodResult, ModelAdapter,
                                    NextTokenRequest, NextTokenResult, Prompt, Usage)

log = logging.getLogger("robustness.models.api")

R = TypeVar("R")

GENERATE, NEXT_TOKEN, LOGLIKELIHOOD = "generate", "next_token", "loglikelihood"

# Option names that would put a credential into a config (and so into W&B and cache keys).
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "credential")


def plain(value: Any) -> Any:
    """Hydra/OmegaConf containers as plain dicts and lists (other values unchanged)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def estimate_cost(prices: Mapping[str, float] | None, input_tokens: int,
                  output_tokens: int) -> float | None:
    """Estimated cost of the given token counts at ``prices`` (per million tokens)."""
    if not prices:
        return None
    return (input_tokens * float(prices.get("input_per_million", 0.0))
            + output_tokens * float(prices.get("output_per_million", 0.0))) / 1e6


@dataclass
class Prepared:
    """A provider payload ready to send, with its token estimate for the rate limiter."""

    payload: Any
    estimated_tokens: float


@dataclass(frozen=True)
class ContinuationRequest:
    """One (prompt, continuation) pair: loglikelihood requests fan out into these."""

    prompt: Prompt
    continuation: str


class ApiAdapter(ModelAdapter):
    """Base of the API providers. Subclasses set ``provider``, ``default_key_env``,
    ``image_limits`` and implement ``_make_client``, ``_build``, ``_send``, ``_classify``."""

    provider: str = "api"
    sdk: str = ""  # the provider SDK's module (installed by the [api] extra)
    default_key_env: tuple[str, ...] = ()
    key_required: bool = True
    image_limits: ImageLimits
    chars_per_token: float = 4.0
    tokens_per_image: int = 800  # rough, only for the token rate limiter

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key_env: str | Sequence[str] | None = None,
        dotenv: str | None = None,
        max_concurrency: int = 16,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        max_retry_after_s: float = 300.0,
        retry_on: Sequence[str] | None = None,
        max_image_side: int | None = None,
        max_image_bytes: int | None = None,
        request_options: Mapping[str, Any] | None = None,
        prices: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> None:
        if not name or not str(name).strip():
            raise ConfigError(f"model.name must name the {self.provider} model to call")
        if self.sdk and importlib.util.find_spec(self.sdk.split(".")[0]) is None:
            raise ConfigError(f"model {name}: the {self.provider} adapter needs the "
                              f"{self.sdk!r} SDK, which is not installed: "
                              "pip install 'mediconfusion-robustness[api]'")
        self.name = str(name)
        self.base_url = str(base_url).rstrip("/") if base_url else None
        self.timeout_s = float(timeout_s)
        if self.timeout_s <= 0:
            raise ConfigError(f"model {self.name}: timeout_s must be positive")
        self.retry = RetryPolicy(int(max_retries), float(initial_backoff_s), float(max_backoff_s),
                                 float(max_retry_after_s), retry_kinds(plain(retry_on)))
        self.throttle = Throttle(max_concurrency, requests_per_minute, tokens_per_minute)
        limits = self.image_limits  # the provider's; the config may only tighten them
        if (max_image_bytes is not None and int(max_image_bytes) < 1024) or (
                max_image_side is not None and int(max_image_side) < 16):
            raise ConfigError(f"model {self.name}: max_image_bytes must be at least 1024 and "
                              f"max_image_side at least 16")
        self.image_limits = ImageLimits(
            max_bytes=min(int(max_image_bytes or limits.max_bytes), limits.max_bytes),
            max_total_bytes=limits.max_total_bytes,
            max_side=min(int(max_image_side), limits.max_side or int(max_image_side))
            if max_image_side else limits.max_side)
        self._images = ImageEncoder(self.image_limits)
        self.request_options = dict(plain(request_options) or {})
        self._check_no_secrets(self.request_options)
        self.prices = self._check_prices(plain(prices))
        key_env = plain(api_key_env)
        if key_env is None:  # the provider's usual variables; [] or "" means "no key"
            key_env = self.default_key_env
        self.api_key_env: tuple[str, ...] = (
            ((key_env,) if key_env else ()) if isinstance(key_env, str) else tuple(key_env))
        self.dotenv = dotenv
        self._secret: Secret | None = None  # resolved on first use: configs build without keys
        install_log_redaction()
        self._rng = random.Random(seed)
        self._client: Any = None
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Any] = self._empty_stats()

    # -- configuration helpers ----------------------------------------------------------------
    def _check_no_secrets(self, options: Mapping[str, Any], where: str = "request_options") -> None:
        for key, value in options.items():
            lowered = str(key).lower()
            if any(word in lowered for word in _SECRET_WORDS) and "max" not in lowered:
                raise ConfigError(f"model {self.name}: {where}.{key} looks like a credential; "
                                  f"keys come only from environment variables (api_key_env)")
            if isinstance(value, Mapping):
                self._check_no_secrets(value, f"{where}.{key}")

    def _check_prices(self, prices: Mapping[str, Any] | None) -> dict[str, float] | None:
        if not prices:
            return None
        unknown = set(prices) - {"input_per_million", "output_per_million"}
        if unknown:
            raise ConfigError(f"model {self.name}: prices has unknown field(s) {sorted(unknown)}; "
                              f"use input_per_million and output_per_million")
        try:
            return {k: float(v) for k, v in prices.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"model {self.name}: prices must be numbers") from None

    def api_key(self) -> Secret:
        """The key, resolved on first use (environment, then ``.env``); a missing required key
        is a :class:`ConfigError` naming the variables, raised before any request is sent."""
        if self._secret is None:
            self._secret = resolve_api_key(self.api_key_env, model=self.name, dotenv=self.dotenv,
                                           required=self.key_required)
        return self._secret

    def check_ready(self) -> None:
        """Fail now (one line) if the adapter cannot send requests, e.g. no key is set."""
        self.api_key()

    # -- identity and display -------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.name

    def identity(self) -> dict[str, Any]:
        """Everything that changes an answer; never a key (only the variable names are kept
        out too: they do not change answers)."""
        return {"model_id": self.name, "provider": self.provider,
                "base_url": redact_text(self.base_url) if self.base_url else None,
                "images": self.image_limits.as_dict(),
                "request_options": self.request_options, **self._identity_extra()}

    def _identity_extra(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        where = f", base_url={redact_text(self.base_url)!r}" if self.base_url else ""
        return f"{type(self).__name__}(model={self.name!r}{where})"

    # -- statistics ----------------------------------------------------------------------------
    @staticmethod
    def _empty_stats() -> dict[str, Any]:
        return {"requests": 0, "attempts": 0, "retries": Counter(), "failures": Counter(),
                "input_tokens": 0, "output_tokens": 0}

    def stats(self) -> dict[str, Any]:
        """Counts since construction: requests, attempts, retries and final failures by kind,
        and token totals (plus ``estimated_cost`` when prices are configured)."""
        with self._stats_lock:
            out = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self._stats.items()}
        cost = estimate_cost(self.prices, out["input_tokens"], out["output_tokens"])
        if cost is not None:
            out["estimated_cost"] = cost
        return out

    def _count(self, **changes: Any) -> None:
        with self._stats_lock:
            for key, value in changes.items():
                if isinstance(self._stats[key], Counter):
                    self._stats[key][value] += 1
                else:
                    self._stats[key] += value

    # -- the interface --------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return self._run_batch(GENERATE, requests, lambda kind, detail, latency: GenerateResult(
            text=None, latency_s=latency, error=kind, error_detail=detail))

    def next_token_scores(self, requests: Sequence[NextTokenRequest]) -> list[NextTokenResult]:
        if Capability.NEXT_TOKEN_SCORES not in self.capabilities:
            self.require(Capability.NEXT_TOKEN_SCORES, "next-token scores")
        return self._run_batch(NEXT_TOKEN, requests, lambda kind, detail, latency: NextTokenResult(
            logprobs={}, latency_s=latency, error=kind, error_detail=detail))

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        if Capability.LOGLIKELIHOOD not in self.capabilities:
            self.require(Capability.LOGLIKELIHOOD, "log-likelihood scoring")
        flat = [ContinuationRequest(r.prompt, c) for r in requests for c in r.continuations]
        parts = self._run_batch(LOGLIKELIHOOD, flat, lambda kind, detail, latency:
                                LoglikelihoodResult(scores=[], latency_s=latency, error=kind,
                                                    error_detail=detail))
        results, i = [], 0
        for request in requests:
            chunk, i = parts[i:i + len(request.continuations)], i + len(request.continuations)
            failed = next((p for p in chunk if p.error), None)
            usage = Usage(sum(p.usage.input_tokens for p in chunk if p.usage),
                          sum(p.usage.output_tokens for p in chunk if p.usage))
            latency = max((p.latency_s for p in chunk), default=0.0)
            if failed is not None:
                results.append(LoglikelihoodResult(scores=[], latency_s=latency, usage=usage,
                                                   error=failed.error,
                                                   error_detail=failed.error_detail))
            else:
                results.append(LoglikelihoodResult(scores=[p.scores[0] for p in chunk],
                                                   latency_s=latency, usage=usage))
        return results

    def close(self) -> None:
        """Close the SDK client (its connections); the adapter reopens one if used again."""
        if self._client is not None:
            client, self._client = self._client, None
            try:
                run_sync(self._close_client(client))
            except Exception as exc:  # closing must never fail a run
                log.debug("closing %s client: %s", self.provider, redact_text(exc))

    # -- provider hooks -------------------------------------------------------------------------
    def _make_client(self) -> Any:
        raise NotImplementedError

    async def _close_client(self, client: Any) -> None:
        close = getattr(client, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result

    def _build(self, kind: str, request: Any) -> Prepared:
        raise NotImplementedError

    async def _send(self, kind: str, prepared: Prepared, request: Any) -> Any:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> ApiFailure:
        return classify_generic(exc)

    # -- helpers for subclasses -----------------------------------------------------------------
    def encode_images(self, prompt: Prompt) -> list[EncodedImage]:
        return self._images.encode_all(prompt.images)

    def estimate_tokens(self, prompt: Prompt, max_output: int) -> float:
        chars = sum(len(m.text) for m in prompt.messages)
        return chars / self.chars_per_token + self.tokens_per_image * len(prompt.images) + max_output

    # -- the engine -----------------------------------------------------------------------------
    def _run_batch(self, kind: str, requests: Sequence[Any],
                   failed: Callable[[str, str, float], R]) -> list[R]:
        if not requests:
            return []
        self.check_ready()
        results = run_sync(self._gather(kind, list(requests), failed))
        errors = Counter(r.error for r in results if getattr(r, "error", None))
        if errors:
            summary = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
            log.warning("%s %s: %d of %d requests came back with an error (%s)", self.provider,
                        self.name, sum(errors.values()), len(results), summary)
        return results

    async def _gather(self, kind: str, requests: list[Any],
                      failed: Callable[[str, str, float], R]) -> list[R]:
        if self._client is None:
            self._client = self._make_client()
            install_log_redaction()  # the SDK's loggers exist now that it is imported
        return list(await asyncio.gather(*(self._one(kind, r, failed) for r in requests)))

    async def _one(self, kind: str, request: Any, failed: Callable[[str, str, float], R]) -> R:
        """One request through slots, rate limits and retries; never raises (but on cancel)."""
        start = time.monotonic()
        prepared: Prepared | None = None
        attempt = 0
        self._count(requests=1)
        while True:
            failure: ApiFailure | None = None
            async with self.throttle.slot():
                try:
                    if prepared is None:
                        prepared = await asyncio.to_thread(self._build, kind, request)
                    await self.throttle.admit(prepared.estimated_tokens)
                    self._count(attempts=1)
                    result = await asyncio.wait_for(self._send(kind, prepared, request),
                                                    self.timeout_s * 1.5 + 1.0)
                except ApiFailure as exc:
                    failure = exc
                except asyncio.TimeoutError:
                    failure = ApiFailure(TIMEOUT, f"no answer within {self.timeout_s:g} s")
                except Exception as exc:  # SDK errors, transport errors, parsing surprises
                    failure = self._classify(exc)
                    if failure.kind == UNEXPECTED:
                        log.warning("%s %s: unexpected error: %s", self.provider, self.name,
                                    failure.detail)
            if failure is None:
                usage = getattr(result, "usage", None)
                if usage is not None:
                    self._count(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
                    self.throttle.settle(prepared.estimated_tokens,
                                         usage.input_tokens + usage.output_tokens)
                result.latency_s = time.monotonic() - start
                if getattr(result, "error", None):
                    self._count(failures=result.error)
                return result
            if self.retry.should_retry(failure, attempt):
                delay = self.retry.delay(failure, attempt, self._rng)
                if failure.retry_after is not None:
                    self.throttle.pause(delay)
                self._count(retries=failure.kind)
                log.info("%s %s: %s; retry %d/%d in %.2f s", self.provider, self.name,
                         failure, attempt + 1, self.retry.max_retries, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self._count(failures=failure.kind)
            detail = failure.detail
            if attempt:
                detail = f"{detail} (after {attempt + 1} attempts)"
            log.info("%s %s: giving up: %s", self.provider, self.name, redact_text(detail))
            return failed(failure.kind, redact_text(detail), time.monotonic() - start)


def parse_guard(what: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorator: a parsing function's lookup/type errors become ``malformed`` failures."""

    def wrap(func: Callable[..., R]) -> Callable[..., R]:
        def inner(*args: Any, **kwargs: Any) -> R:
            try:
                return func(*args, **kwargs)
            except ApiFailure:
                raise
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
                raise ApiFailure(MALFORMED, f"unexpected {what}: {type(exc).__name__}: {exc}") from None
        return inner

    return wrap

