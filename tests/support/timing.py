"""Deterministic time for tests: a clock the test moves by hand, and a bounded yield loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class FakeClock:
    """A monotonic clock for the code under test; only ``advance`` moves it."""

    def __init__(self, start: float = 500.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def settle(done: Callable[[], bool], limit: int = 200) -> None:
    """Let other tasks run until ``done()`` holds (bounded by a number of loop turns)."""
    for _ in range(limit):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
