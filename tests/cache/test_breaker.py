"""CircuitBreaker state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from eventapi.cache.breaker import BreakerState, CircuitBreaker
from tests.support.timing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout=3.0, clock=clock)


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # a call, so mypy does not narrow the state between assertions


def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN


def test_starts_closed_and_allows_calls(breaker: CircuitBreaker) -> None:
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allows_calls()
    assert not breaker.begin_probe()


def test_opens_after_threshold_failures(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allows_calls()

    breaker.record_failure()

    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allows_calls()


def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()

    assert state(breaker) is BreakerState.CLOSED

    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN


def test_trip_opens_at_once(breaker: CircuitBreaker) -> None:
    breaker.trip()

    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allows_calls()


def test_open_rejects_until_the_reset_timeout(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)

    clock.advance(2.9)

    assert not breaker.begin_probe()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allows_calls()


def test_probe_is_due_exactly_once_after_the_reset_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    clock.advance(3.5)

    assert breaker.begin_probe()
    assert state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allows_calls()  # only the probe goes through
    assert not breaker.begin_probe()
    clock.advance(100.0)
    assert not breaker.begin_probe()
    assert state(breaker) is BreakerState.HALF_OPEN


def test_a_late_success_does_not_close_an_open_breaker(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_it(breaker)
    breaker.record_success()  # a call that began before the breaker opened
    assert state(breaker) is BreakerState.OPEN
    clock.advance(3.5)
    assert breaker.begin_probe()
    breaker.record_success()  # still not the probe's verdict
    assert state(breaker) is BreakerState.HALF_OPEN


def test_close_after_a_probe_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(3.5)
    assert breaker.begin_probe()

    breaker.close()

    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allows_calls()
    # The count started afresh: it takes the full threshold to open again.
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN


def test_failure_in_half_open_reopens_at_once(breaker: CircuitBreaker, clock: FakeClock) -> None:
    breaker.trip()  # opened without counted failures (as a failed invalidation does)
    clock.advance(3.5)
    assert breaker.begin_probe()

    breaker.record_failure()  # one failure, below the threshold of 3

    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allows_calls()
    # A new open period: the next probe waits a full reset_timeout from the re-opening.
    clock.advance(2.9)
    assert not breaker.begin_probe()
    clock.advance(0.2)
    assert breaker.begin_probe()
    assert state(breaker) is BreakerState.HALF_OPEN
