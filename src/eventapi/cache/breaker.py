"""A circuit breaker: stop calling a failing dependency, probe it again later."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = 0  # calls go through
    OPEN = 1  # calls are skipped until the reset timeout passes
    HALF_OPEN = 2  # one probe is under way; everyone else still skips


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 2,
        reset_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self.state = BreakerState.CLOSED

    def allows_calls(self) -> bool:
        return self.state is BreakerState.CLOSED

    def seconds_until_probe(self) -> float:
        """How long until begin_probe() can be true (0 when it is; inf while closed)."""
        if self.state is not BreakerState.OPEN:
            return float("inf")
        return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def begin_probe(self) -> bool:
        """Once per open period, when it is time to try the dependency again: go half-open
        (everyone else still skips) and return True; the caller then probes."""
        if (
            self.state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self.state = BreakerState.HALF_OPEN
            return True
        return False

    def record_success(self) -> None:
        # A call that began before the breaker opened may still succeed afterwards; that
        # says nothing about recovery, so only close() (the probe) ends an open period.
        if self.state is BreakerState.CLOSED:
            self._failures = 0

    def close(self) -> None:
        self._failures = 0
        self.state = BreakerState.CLOSED

    def record_failure(self) -> None:
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self.trip()

    def trip(self) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()
