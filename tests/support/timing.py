"""Deterministic time for tests: a clock the test moves by hand, and a wait that only
yields to the other tasks."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.poll import eventually


class FakeClock:
    """A monotonic clock for the code under test; only ``advance`` moves it."""

    def __init__(self, start: float = 500.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def settle(done: Callable[[], bool], what: str = "the other tasks settled") -> None:
    """Let the other tasks run (no clock: a bare yield between checks) until ``done()``."""
    await eventually(done, what, step=0)
