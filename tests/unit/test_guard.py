"""GuardedCache over a scripted fake inner cache: budget, breaker, invalidation replay.

The fake is deliberate: these tests are about the wrapper's own logic, so the inner cache
only has to fail, block or answer on command and count what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from eventapi.cache.base import Cache, CacheBackend, CacheKey, CacheUnavailable, Lookup, LookupState
from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.guard import MAX_PENDING, GuardedCache
from tests.support.timing import FakeClock, settle

KEY = CacheKey("item:x")
BUDGET = 0.05
RESET = 3.0


class FakeCache:
    """Implements the Cache Protocol. Per operation, it can be told to raise or to block."""

    backend: CacheBackend = "memory"

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.entered: Counter[str] = Counter()
        self.cancelled: Counter[str] = Counter()
        self.invalidated: list[list[str]] = []
        self.errors: dict[str, BaseException] = {}
        self.gates: dict[str, asyncio.Event] = {}

    async def _run(self, op: str) -> None:
        self.calls[op] += 1
        gate = self.gates.get(op)
        if gate is not None:
            self.entered[op] += 1
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.cancelled[op] += 1
                raise
        error = self.errors.get(op)
        if error is not None:
            raise error

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup:
        await self._run("lease")
        return Lookup(LookupState.LEASED, "0:" + key.name, token="t")

    async def fill(self, resolved: str, token: str, value: bytes, ttl_ms: int) -> bool:
        await self._run("fill")
        return True

    async def invalidate(self, item_names: Sequence[str]) -> None:
        await self._run("invalidate")
        self.invalidated.append(list(item_names))

    async def retire_all(self) -> None:
        await self._run("retire_all")

    async def ping(self) -> None:
        await self._run("ping")

    async def close(self) -> None:
        self.calls["close"] += 1


def _typed(cache: FakeCache) -> Cache:
    return cache  # mypy checks here that the fake really implements the Protocol


class Rig:
    def __init__(
        self,
        threshold: int = 2,
        reset: float = RESET,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.inner = FakeCache()
        self.breaker = CircuitBreaker(
            failure_threshold=threshold, reset_timeout=reset, clock=clock or self.clock
        )
        self.errors: list[str] = []
        self.guard = GuardedCache(_typed(self.inner), BUDGET, self.breaker, self.errors.append)

    def state(self) -> BreakerState:
        return self.breaker.state  # a call, so mypy does not narrow it between assertions

    def break_inner(self) -> None:
        for op in ("lease", "fill", "invalidate", "retire_all", "ping"):
            self.inner.errors[op] = ConnectionError("down")

    def heal_inner(self) -> None:
        self.inner.errors.clear()

    async def open_breaker(self) -> None:
        """Open the breaker through failing reads (no invalidation is pending)."""
        self.break_inner()
        for _ in range(self.breaker.failure_threshold):
            with pytest.raises(CacheUnavailable):
                await self.guard.lease(KEY, 1000)
        assert self.state() is BreakerState.OPEN


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    yield made
    await made.guard.close()


OPERATIONS: dict[str, Callable[[GuardedCache], Awaitable[object]]] = {
    "lease": lambda g: g.lease(KEY, 1000),
    "fill": lambda g: g.fill("0:item:x", "t", b"v", 1000),
    "ping": lambda g: g.ping(),
}


# --- budget and errors ----------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(OPERATIONS))
async def test_a_call_over_budget_raises_cache_unavailable(rig: Rig, op: str) -> None:
    rig.inner.gates[op] = asyncio.Event()  # never set: the inner call hangs
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(CacheUnavailable) as caught:
        # The outer bound only turns a missing budget into a failure instead of a hang.
        await asyncio.wait_for(OPERATIONS[op](rig.guard), timeout=5.0)

    assert loop.time() - started < 1.0  # budget is 0.05 s: a generous bound
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert rig.inner.cancelled[op] == 1  # the hung call was abandoned, not left running
    assert rig.errors == [op]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ConnectionError("refused"), id="ConnectionError"),
        pytest.param(OSError("broken pipe"), id="OSError"),
        pytest.param(RuntimeError("boom"), id="RuntimeError"),
        pytest.param(ValueError("bad reply"), id="ValueError"),
        pytest.param(KeyError("x"), id="KeyError"),
        pytest.param(TimeoutError(), id="TimeoutError"),
        pytest.param(RedisConnectionError("redis down"), id="redis-ConnectionError"),
        pytest.param(ResponseError("NOSCRIPT"), id="redis-ResponseError"),
    ],
)
@pytest.mark.parametrize("op", sorted(OPERATIONS))
async def test_errors_of_any_type_become_cache_unavailable(
    rig: Rig, op: str, error: Exception
) -> None:
    rig.inner.errors[op] = error

    with pytest.raises(CacheUnavailable) as caught:
        await OPERATIONS[op](rig.guard)

    assert caught.value.__cause__ is error
    assert rig.errors == [op]


async def test_failures_open_the_breaker_at_the_threshold(rig: Rig) -> None:
    rig.break_inner()

    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)
    assert rig.state() is BreakerState.CLOSED
    assert rig.guard.connected
    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)

    assert rig.state() is BreakerState.OPEN
    assert not rig.guard.connected


async def test_successful_calls_pass_results_through(rig: Rig) -> None:
    lookup = await rig.guard.lease(KEY, 1000)

    assert lookup == Lookup(LookupState.LEASED, "0:item:x", token="t")
    assert await rig.guard.fill("0:item:x", "t", b"v", 1000) is True
    assert rig.state() is BreakerState.CLOSED


# --- open breaker ---------------------------------------------------------------------------


async def test_while_open_calls_fail_at_once_without_touching_the_inner_cache(rig: Rig) -> None:
    await rig.open_breaker()
    rig.heal_inner()
    before = rig.inner.calls.copy()

    for op in sorted(OPERATIONS):
        with pytest.raises(CacheUnavailable):
            await OPERATIONS[op](rig.guard)
    await rig.guard.invalidate(["item:a"])
    await rig.guard.retire_all()
    for _ in range(5):
        await asyncio.sleep(0)  # a (wrongly) started probe would get to run here

    assert rig.inner.calls == before
    assert rig.state() is BreakerState.OPEN


async def test_a_failed_invalidate_is_swallowed_and_trips_the_breaker() -> None:
    rig = Rig(threshold=5)  # one failure alone would not open it
    rig.inner.errors["invalidate"] = ConnectionError("down")

    await rig.guard.invalidate(["item:a"])  # does not raise: the write already succeeded

    assert rig.state() is BreakerState.OPEN
    assert not rig.guard.connected
    assert rig.errors == ["invalidate"]
    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)
    await rig.guard.close()


async def test_a_failed_retire_all_trips_the_breaker_and_is_replayed(rig: Rig) -> None:
    rig.inner.errors["retire_all"] = ConnectionError("down")

    await rig.guard.retire_all()

    assert rig.state() is BreakerState.OPEN
    rig.heal_inner()
    await rig.guard.probe()
    assert rig.inner.calls["retire_all"] == 2
    assert rig.state() is BreakerState.CLOSED


# --- probe and replay -----------------------------------------------------------------------


async def test_probe_replays_remembered_invalidations_then_closes(rig: Rig) -> None:
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate(["item:b", "item:a"])
    await rig.guard.invalidate(["item:c"])  # while open: remembered, inner not called
    assert rig.inner.calls["invalidate"] == 1
    rig.heal_inner()

    await rig.guard.probe()

    assert rig.inner.calls["ping"] == 1
    assert rig.inner.invalidated == [["item:a", "item:b", "item:c"]]
    assert rig.inner.calls["retire_all"] == 0
    assert rig.state() is BreakerState.CLOSED
    # Replayed once: a later probe has nothing left to replay.
    rig.breaker.trip()
    await rig.guard.probe()
    assert rig.inner.invalidated == [["item:a", "item:b", "item:c"]]


async def test_probe_without_pending_invalidations_only_pings(rig: Rig) -> None:
    await rig.open_breaker()
    rig.heal_inner()

    await rig.guard.probe()

    assert rig.inner.calls["ping"] == 1
    assert rig.inner.calls["invalidate"] == 0
    assert rig.inner.calls["retire_all"] == 0
    assert rig.state() is BreakerState.CLOSED


async def test_a_failed_invalidate_of_no_items_still_replays_the_list_retirement(
    rig: Rig,
) -> None:
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate([])
    rig.heal_inner()

    await rig.guard.probe()

    assert rig.inner.invalidated == [[]]
    assert rig.state() is BreakerState.CLOSED


async def test_a_call_after_the_reset_timeout_starts_a_background_probe(rig: Rig) -> None:
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate(["item:a"])
    rig.heal_inner()
    rig.clock.advance(RESET + 0.1)

    with pytest.raises(CacheUnavailable):  # this call still skips the cache
        await rig.guard.lease(KEY, 1000)
    await settle(lambda: rig.state() is BreakerState.CLOSED)

    assert rig.inner.calls["lease"] == 0
    assert rig.inner.calls["ping"] == 1
    assert rig.inner.invalidated == [["item:a"]]
    assert (await rig.guard.lease(KEY, 1000)).state is LookupState.LEASED


async def test_more_than_max_pending_names_make_the_probe_retire_everything(rig: Rig) -> None:
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate([f"item:{i}" for i in range(MAX_PENDING + 1)])
    rig.heal_inner()

    await rig.guard.probe()

    assert rig.inner.calls["retire_all"] == 1
    assert rig.inner.invalidated == []  # the failed attempt is the only invalidate call
    assert rig.inner.calls["invalidate"] == 1
    assert rig.state() is BreakerState.CLOSED


async def test_up_to_max_pending_names_are_replayed_one_by_one(rig: Rig) -> None:
    names = [f"item:{i:05d}" for i in range(MAX_PENDING)]
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate(names)
    rig.heal_inner()

    await rig.guard.probe()

    assert rig.inner.calls["retire_all"] == 0
    assert rig.inner.invalidated == [names]
    assert rig.state() is BreakerState.CLOSED


@pytest.mark.parametrize("failing", ["ping", "invalidate"])
async def test_a_failed_probe_keeps_the_breaker_open_and_the_names(rig: Rig, failing: str) -> None:
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate(["item:a"])
    rig.inner.errors[failing] = ConnectionError("still down")
    rig.clock.advance(RESET + 0.1)
    assert rig.breaker.probe_due()  # as the guard would, before starting the probe

    await rig.guard.probe()

    assert rig.state() is BreakerState.OPEN
    assert not rig.breaker.probe_due()  # a new open period began
    # The names are still remembered: the next successful probe replays them.
    rig.heal_inner()
    await rig.guard.probe()
    assert rig.inner.invalidated == [["item:a"]]
    assert rig.state() is BreakerState.CLOSED


async def test_a_hung_probe_gives_up_and_keeps_the_breaker_open(rig: Rig) -> None:
    await rig.open_breaker()
    rig.heal_inner()
    rig.inner.gates["ping"] = asyncio.Event()  # never set

    await asyncio.wait_for(rig.guard.probe(), timeout=5.0)

    assert rig.inner.cancelled["ping"] == 1
    assert rig.state() is BreakerState.OPEN


async def test_an_idle_guard_probes_on_a_timer_and_recovers() -> None:
    """No traffic at all after the outage (e.g. only /metrics is scraped): the breaker must
    still close. This one needs the loop's real timer, so the reset period is short and the
    wait is a bounded poll on the breaker's state."""
    rig = Rig(reset=0.02, clock=time.monotonic)
    try:
        rig.inner.errors["invalidate"] = ConnectionError("down")
        await rig.guard.invalidate(["item:a"])
        assert rig.state() is BreakerState.OPEN
        rig.heal_inner()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while rig.state() is not BreakerState.CLOSED:
            assert loop.time() < deadline, "the breaker never closed"
            await asyncio.sleep(0.01)  # poll interval of a bounded wait

        assert rig.inner.invalidated == [["item:a"]]
        assert rig.inner.calls["ping"] >= 1
    finally:
        await rig.guard.close()


async def test_close_cancels_a_running_probe(rig: Rig) -> None:
    await rig.open_breaker()
    rig.heal_inner()
    rig.inner.gates["ping"] = asyncio.Event()  # the probe hangs in ping
    rig.clock.advance(RESET + 0.1)
    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)
    await settle(lambda: rig.inner.entered["ping"] == 1)

    await rig.guard.close()
    await settle(lambda: rig.inner.cancelled["ping"] == 1)

    assert rig.inner.calls["close"] >= 1
    assert rig.state() is not BreakerState.CLOSED


# --- breaker state against concurrent calls ------------------------------------------------


async def test_a_call_that_succeeds_while_open_does_not_skip_the_replay(rig: Rig) -> None:
    """A lease started while closed finishes after an invalidate failed: the breaker must stay
    open until the probe has replayed the invalidation, or readers see the old value."""
    rig.inner.gates["lease"] = gate = asyncio.Event()
    reader = asyncio.create_task(rig.guard.lease(KEY, 1000))
    await settle(lambda: rig.inner.entered["lease"] == 1)
    rig.inner.errors["invalidate"] = ConnectionError("down")
    await rig.guard.invalidate(["item:x"])
    assert rig.state() is BreakerState.OPEN

    gate.set()
    await reader

    assert rig.state() is BreakerState.OPEN
    assert rig.inner.invalidated == []


async def test_invalidations_while_open_do_not_postpone_the_probe(rig: Rig) -> None:
    """The probe checks the cache every reset_timeout seconds, even under steady writes."""
    await rig.open_breaker()
    rig.heal_inner()
    rig.clock.advance(RESET * 0.9)
    await rig.guard.invalidate(["item:a"])  # a write while open: remembered
    rig.clock.advance(RESET * 0.2)  # 1.1 x reset_timeout since the breaker opened

    with contextlib.suppress(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)
    await settle(lambda: rig.state() is BreakerState.CLOSED)

    assert [name for names in rig.inner.invalidated for name in names] == ["item:a"]
