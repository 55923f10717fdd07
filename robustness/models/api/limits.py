"""How hard an adapter may push a provider: in-flight bound, rate limits, retries with backoff.

All of it runs on the API event loop (see ``loop.py``): a :class:`Throttle` hands out slots
(bounded concurrency, a shared pause after a ``Retry-After``, request and token buckets) and a
:class:`RetryPolicy` says whether and how long to wait before the next attempt.
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Sequence

from robustness.errors import ConfigError
from robustness.models.api.failures import TRANSIENT, ApiFailure


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's ``Retry-After`` overrides the backoff."""

    max_retries: int = 6
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 300.0
    retry_on: tuple[str, ...] = TRANSIENT

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ConfigError("retry settings must be non-negative "
                              f"(max_retries={self.max_retries}, "
                              f"initial_backoff_s={self.initial_backoff_s})")

    def should_retry(self, failure: ApiFailure, attempt: int) -> bool:
        """``attempt`` counts from 0 (the first try)."""
        return failure.kind in self.retry_on and attempt < self.max_retries

    def delay(self, failure: ApiFailure, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1``: the server's ``Retry-After`` plus up
        to 10% jitter when given, else "equal jitter" backoff in [cap/2, cap]."""
        if failure.retry_after is not None:
            wait = min(failure.retry_after, self.max_retry_after_s)
            return wait * (1.0 + 0.1 * rng.random())
        cap = min(self.max_backoff_s, self.initial_backoff_s * (2.0 ** attempt))
        return cap / 2.0 + rng.random() * cap / 2.0


class TokenBucket:
    """``per_minute`` units refilled continuously, with a burst of at most ten seconds' worth
    (providers enforce per-minute limits over shorter windows)."""

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ConfigError(f"rate limits must be positive, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 6.0)
        self.level = self.capacity
        self._stamp = time.monotonic()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, amount: float) -> None:
        """Wait until ``amount`` units (capped at the bucket size) are available, then take them."""
        amount = min(float(amount), self.capacity)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # first come, first served
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def correct(self, delta: float) -> None:
        """Charge (or refund) the difference between an estimate and the real usage."""
        self._refill()
        self.level = min(self.capacity, self.level - delta)


class Throttle:
    """Slots for requests: at most ``max_in_flight`` at once, none while a ``Retry-After``
    pause is running, and within the optional request and token rates."""

    def __init__(self, max_in_flight: int = 16, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None) -> None:
        if int(max_in_flight) < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_in_flight}")
        self.max_in_flight = int(max_in_flight)
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._pause_until = 0.0
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:  # new loop (e.g. after a fork)
            if self._loop is not None:  # locks of the old loop cannot be used on this one
                for bucket in (self.requests, self.tokens):
                    if bucket is not None:
                        bucket._lock = None
            self._sem, self._loop = asyncio.Semaphore(self.max_in_flight), loop
        return self._sem

    def pause(self, seconds: float) -> None:
        """Hold back every new attempt for ``seconds`` (the provider asked us to slow down)."""
        self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore():
            while (wait := self._pause_until - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            yield

    async def admit(self, estimated_tokens: float) -> None:
        """Take the request's share of the rate limits (inside a slot, before sending)."""
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: float, actual_tokens: float | None) -> None:
        if self.tokens is not None and actual_tokens is not None:
            self.tokens.correct(actual_tokens - estimated_tokens)


def retry_kinds(value: Sequence[str] | None) -> tuple[str, ...]:
    """Validated failure kinds to retry on (default: the transient ones)."""
    if value is None:
        return TRANSIENT
    kinds = tuple(str(v) for v in value)
    allowed = set(TRANSIENT) | {"malformed"}
    unknown = [k for k in kinds if k not in allowed]
    if unknown:
        raise ConfigError(f"retry_on: unknown failure kind(s) {unknown}; "
                          f"choose from {sorted(allowed)}")
    return kinds
