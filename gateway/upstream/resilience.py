"""Upstream resilience: deadlines, retries with backoff, a circuit breaker and a concurrency cap.

One `Resilience` per app wraps every upstream attempt (see `OmsClient.get_json`):

    deadline left? ── no ──> UpstreamTimeout
        │ yes
    breaker allows? ── no ──> UpstreamUnavailable (fail fast, no call)
        │ yes
    a concurrency slot before the deadline? ── no ──> UpstreamTimeout (no breaker verdict)
        │ yes
    attempt ──> success, or a retryable failure (connection error; 429, 502, 503, 504)
                 └─> sleep backoff (or Retry-After) if it ends before the deadline, retry ≤ N
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.settings import Settings

logger = logging.getLogger("gateway.upstream")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.05
    max_delay: float = 1.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Capped exponential backoff with full jitter (attempt counts from 1)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a delay in seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class Clock(Protocol):
    """The time the upstream rules read: the deadline, the breaker, Retry-After dates and the
    waits between attempts (the app's response cache expires by it too). The app runs on
    `SystemClock`; tests pass one that moves on demand, so what they assert never depends on
    how busy the machine is."""

    def monotonic(self) -> float: ...

    def wall(self) -> float:
        """Seconds since the epoch, for a `Retry-After` given as an HTTP date."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    # The functions themselves, no method around them: read ~4 times per upstream call.
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Permit(StrEnum):
    """What `CircuitBreaker.allow` grants: an ordinary call, or the one half-open probe."""

    CALL = "call"
    PROBE = "probe"


# The members as module names: reading one off its class costs ~1k instructions in 3.11 (an
# enum's members are descriptors there), and the breaker reads ~3 per upstream call.
_CLOSED, _OPEN, _HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
CALL, PROBE = Permit.CALL, Permit.PROBE


class CircuitBreaker:
    """Opens when failures reach a ratio of enough calls within a window; probes after a pause."""

    def __init__(
        self,
        *,
        failure_ratio: float,
        min_calls: int,
        window: float,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_ratio = failure_ratio
        self.min_calls = min_calls
        self.window = window
        self.cooldown = cooldown
        self._clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0  # failures among `_outcomes`, kept so a record costs O(1)
        # When each input-keyed failure last counted: the same input counts once per window.
        self._failed_keys: dict[str, float] = {}
        self.state = _CLOSED
        self._opened_at = 0.0
        self._probing = False
        self.transitions = 0

    def allow(self) -> Permit | None:
        """Whether a call may go out now (in half-open, only one probe at a time)."""
        if self.state is _OPEN:
            if self._clock() - self._opened_at < self.cooldown:
                return None
            self._move(_HALF_OPEN)
        if self.state is _HALF_OPEN:
            if self._probing:
                return None
            self._probing = True
            return PROBE
        return CALL

    def record(self, success: bool, *, probe: bool = False, key: str | None = None) -> None:
        """An attempt's outcome. Only the probe decides a half-open breaker; a call that went
        out while closed and ends after the breaker opened says nothing about it any more.
        A failure with a `key` (the client input that may have provoked it) counts once per
        window however often that input is sent."""
        now = self._clock()
        if key is not None and not success and not probe and self._seen_failing(key, now):
            return
        if probe:
            self._probing = False
            if self.state is _HALF_OPEN:
                if success:
                    self._forget()
                    self._move(_CLOSED)
                else:
                    self._open(now)
            return
        if self.state is not _CLOSED:
            return
        outcomes = self._outcomes
        outcomes.append((now, success))
        self._failures += not success
        while now - outcomes[0][0] > self.window:
            self._failures -= not outcomes.popleft()[1]
        calls = len(outcomes)
        if calls >= self.min_calls and self._failures >= self.failure_ratio * calls:
            self._open(now)

    def _seen_failing(self, key: str, now: float) -> bool:
        keys = self._failed_keys
        while keys:  # oldest first: drop what left the window
            old, at = next(iter(keys.items()))
            if now - at <= self.window:
                break
            del keys[old]
        if key in keys:
            return True
        keys[key] = now
        return False

    def release_probe(self) -> None:
        """A probe that ended without an outcome (cancelled, or no slot) frees the probe."""
        self._probing = False

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._forget()
        self._move(_OPEN)

    def _forget(self) -> None:
        self._outcomes.clear()
        self._failures = 0
        self._failed_keys.clear()

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            logger.warning("upstream circuit breaker %s -> %s", self.state.value, state.value)
            self.state = state
            self.transitions += 1


@dataclass(slots=True)
class Verdicts:
    """What one operation has told the breaker: at most one failure however many of its calls
    (aliases, pages, ids) fail, so one client's request weighs as one failure. Successes all
    count: an operation with one bad id among nine good ones must not read as 50% failing."""

    failed: bool = False

    def record(
        self, breaker: CircuitBreaker, success: bool, *, probe: bool, key: str | None = None
    ) -> None:
        if not success and not probe:  # the half-open probe always reports: it decides
            if self.failed:
                return
            self.failed = True
        breaker.record(success, probe=probe, key=key)


class Resilience:
    """The app-wide resilience state: one breaker, one concurrency cap, one retry policy."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.policy = RetryPolicy(
            max_retries=settings.upstream_retries,
            base_delay=settings.upstream_backoff_base,
            max_delay=settings.upstream_backoff_max,
        )
        self.breaker = CircuitBreaker(
            failure_ratio=settings.breaker_failure_ratio,
            min_calls=settings.breaker_min_calls,
            window=settings.breaker_window,
            cooldown=settings.breaker_cooldown,
            clock=self.clock.monotonic,
        )
        self.slots = asyncio.Semaphore(settings.upstream_concurrency)
        self.rng = random.Random()
