"""Helpers for the cache tests: probes on running app instances, waiting without sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx
import pytest

from eventapi.cache.base import Cache, CacheKey, LookupState
from eventapi.cache.readthrough import Loader, Read, ReadThrough
from eventapi.cache.redis import RedisCache, connect
from tests.support.app import RunningApp, flights
from tests.support.gated_store import Gate, GatedStore

T = TypeVar("T")

Launch = Callable[..., Awaitable[RunningApp]]  # start another app instance (conftest `launch`)

# Only a guard against a test hanging for ever when the code under test is broken. No test
# waits on a clock to let something happen: every wait below ends on an event the code sets.
HANG_GUARD = 30.0
# Concurrent requests in a stampede test.
N = 1000
# How long a read that should finish on its own may take before it counts as stuck behind a
# paused reader. A passing run never waits for it: the read finishes in milliseconds.
STUCK = 5.0


async def within(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(HANG_GUARD):
        return await awaitable


class JoinProbe:
    """Counts requests that have entered ``ReadThrough.read`` of one or more app instances.

    ``read`` runs synchronously up to its ``await asyncio.shield(flight)``, so once a request
    is counted here it is waiting on a flight (it never re-enters). ``all_in`` is set when
    ``expected`` requests have entered, across every wrapped instance.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.entered: Counter[int] = Counter()  # per instance index
        self.all_in = asyncio.Event()

    def wrap(self, monkeypatch: pytest.MonkeyPatch, instances: Iterable[RunningApp]) -> JoinProbe:
        for index, instance in enumerate(instances):
            monkeypatch.setattr(instance.reads, "read", self._counting(index, instance.reads))
        return self

    def _counting(
        self, index: int, reads: ReadThrough[Any]
    ) -> Callable[[CacheKey, Loader], Awaitable[Read]]:
        original = reads.read

        async def read(key: CacheKey, load: Loader) -> Read:
            self.entered[index] += 1
            if self.entered.total() == self.expected:
                self.all_in.set()
            return await original(key, load)

        return read


async def unless_stuck(task: asyncio.Task[T], gate: Gate) -> tuple[bool, T]:
    """Await ``task``; if it cannot finish while ``gate`` is shut (it waits on the paused
    reader), open the gate so the test can show what it returned. Returns (finished on its
    own, result). The clock here only detects a hang; a passing run never waits on it."""
    done, _ = await asyncio.wait({task}, timeout=STUCK)
    if not done:
        gate.open()
    return bool(done), await within(task)


def assert_shows(response: httpx.Response, expected: Any) -> None:
    """``expected`` is the event's JSON body, or None for "deleted" (404)."""
    if expected is None:
        assert response.status_code == 404, response.text
    else:
        assert response.status_code == 200, response.text
        assert response.json() == expected


async def stampede(
    tasks: list[asyncio.Task[httpx.Response]],
    gate: Gate,
    probe: JoinProbe,
    instances: list[RunningApp],
    gated: GatedStore,
    calls: int,
) -> list[httpx.Response]:
    """Open ``gate`` once every request waits on the one paused load, then collect them.

    If a check fails, the gate still opens and every request still finishes before the
    test ends (none may outlive the app and the store)."""
    try:
        await within(gate.read_done.wait())
        await within(probe.all_in.wait())
        # The load under way, and on each instance at most one more flight: the requests
        # that arrived once it had started, waiting for it to fill the cache.
        assert all(flights(instance.reads) in (1, 2) for instance in instances)
        assert gated.calls[gate.method] == calls
    except BaseException:
        gate.open()
        await within(asyncio.gather(*tasks, return_exceptions=True))
        raise
    gate.open()
    return await within(asyncio.gather(*tasks))


def assert_identical(responses: list[httpx.Response]) -> None:
    assert Counter(response.status_code for response in responses) == {200: N}
    assert len({response.content for response in responses}) == 1
    assert len({response.headers["etag"] for response in responses}) == 1


async def cache_anew(cache: Cache, key: CacheKey, value: bytes, ttl_ms: int = 60_000) -> None:
    """Lease ``key`` (nothing is cached there yet) and fill it with ``value``."""
    lookup = await cache.lease(key, 60_000)
    assert lookup.state is LookupState.LEASED, lookup
    assert lookup.token is not None
    assert await cache.fill(lookup.resolved, lookup.token, value, ttl_ms)


@contextlib.asynccontextmanager
async def private_cache(url: str) -> AsyncIterator[RedisCache]:
    """A RedisCache on ``url`` in a namespace of its own, closed afterwards."""
    made = RedisCache(connect(url, timeout=1.0), f"test-{uuid.uuid4().hex}")
    try:
        yield made
    finally:
        await made.close()
