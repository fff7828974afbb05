"""The one way the tests wait for something another task or process does: poll a predicate
until it holds, up to a deadline, and fail naming what was awaited.

A bounded wait for a condition, never a sleep standing in for synchronisation: a passing run
returns as soon as the condition holds; the deadline only turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

# Default bound on a wait: generous, since it only matters when something is broken (and a
# loaded 2-core machine running four workers can be slow to start a process).
WITHIN = 15.0


class NotYet(AssertionError):
    """Raised by ``eventually`` when the deadline passed before the condition held."""


def _message(what: str, within: float, last: object) -> str:
    tail = f"; last seen: {last!r}" if last is not None else ""
    return f"{what}: not within {within}s{tail}"


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    what: str,
    *,
    within: float = ...,
    step: float = ...,
    until: Callable[[T], bool] = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    what: str,
    *,
    within: float = ...,
    step: float = ...,
    until: Callable[[T], bool] = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    what: str,
    *,
    within: float = WITHIN,
    step: float = 0.01,
    until: Callable[[Any], bool] = bool,
) -> Any:
    """Call ``check()`` (sync or async) until ``until(result)`` holds; return that result.

    Between calls, sleep ``step`` seconds (0: only let the other tasks run). After ``within``
    seconds fail with ``NotYet`` naming ``what`` and the last result seen. An exception
    raised by ``check`` is not caught: a check that may fail for a while (a server not yet
    listening) catches its own expected errors and returns a falsy value.
    """
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if until(value):
            return value
        last = value
        if time.monotonic() > deadline:
            raise NotYet(_message(what, within, last))
        await asyncio.sleep(step)


def eventually_sync(
    check: Callable[[], T],
    what: str,
    *,
    within: float = WITHIN,
    step: float = 0.01,
    until: Callable[[T], bool] = bool,
) -> T:
    """The blocking counterpart of ``eventually`` (for code outside an event loop)."""
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        value = check()
        if until(value):
            return value
        last = value
        if time.monotonic() > deadline:
            raise NotYet(_message(what, within, last))
        time.sleep(step)
