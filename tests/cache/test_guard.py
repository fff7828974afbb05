"""GuardedCache over a scripted fake inner cache and change log: budget, breaker, relay, probe.

The fakes are deliberate: these tests are about the wrapper's own logic, so the inner cache
and the feed only have to fail, block or answer on command and record what they were asked.
Every rig is started (one relay pass, then the background task) when entered; unless a
test is about the timer, its interval is an hour, so the task stays asleep and the test
drives relay() and probe() itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from eventapi.cache.base import (
    Cache,
    CacheBackend,
    CacheKey,
    CacheUnavailable,
    Fill,
    Lookup,
    LookupState,
    WriteLease,
)
from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.guard import GuardedCache
from eventapi.changes import Change, ChangeBatch, ChangeFeed
from eventapi.errors import StoreUnavailable
from tests.support.timing import FakeClock, settle

KEY = CacheKey("item:x")
BUDGET = 0.05
RESET = 3.0
HOUR = 3600.0  # a relay interval that never elapses during a test
TICK = 0.005  # the relay interval of the tests about the timer itself
BOUND = 5.0  # seconds: a generous ceiling on awaiting things that should happen promptly
CACHE_OPS = (
    "lease",
    "fill",
    "lease_for_write",
    "invalidate",
    "retire_all",
    "watermark",
    "catch_up",
    "reset",
    "reconnect",
    "ping",
)


class FakeCache:
    """Implements the Cache Protocol. Per operation, it can be told to raise or to block.

    Its change-log state is the minimum the relay needs: a watermark (0: already relayed
    once) that reset() and catch_up() raise, and a record of what they were given.
    """

    backend: CacheBackend = "memory"
    # What a Redis-backed cache counts as its own failures (RedisCache.failures).
    failures: tuple[type[Exception], ...] = (RedisError, OSError)
    refusals: tuple[type[Exception], ...] = (ResponseError,)

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.log: list[str] = []
        self.called: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.entered: Counter[str] = Counter()
        self.cancelled: Counter[str] = Counter()
        self.errors: dict[str, BaseException] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.invalidated: list[tuple[list[str], list[int]]] = []
        self.mark: int | None = 0
        self.caught_up: list[tuple[list[Change], int]] = []
        self.resets: list[int] = []

    async def _run(self, op: str) -> None:
        self.calls[op] += 1
        self.log.append(op)
        self.called[op].set()
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

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        await self._run("lease_for_write")
        return WriteLease("0:" + key.name, "w")

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill] = ()
    ) -> None:
        await self._run("invalidate")
        self.invalidated.append(([*item_names, *(f.name for f in fills)], list(seqs)))

    async def retire_all(self) -> None:
        await self._run("retire_all")

    async def watermark(self) -> int | None:
        await self._run("watermark")
        return self.mark

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        await self._run("catch_up")
        self.caught_up.append((list(changes), through))
        if self.mark is not None:
            self.mark = max(self.mark, through)

    async def reset(self, head: int) -> None:
        await self._run("reset")
        self.resets.append(head)
        self.mark = max(self.mark or 0, head)

    async def reconnect(self) -> None:
        await self._run("reconnect")

    async def ping(self) -> None:
        await self._run("ping")

    async def close(self) -> None:
        self.calls["close"] += 1


class FakeFeed:
    """The store's change log: every recorded change has settled. It can raise or block."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.calls = 0
        self.asked = asyncio.Event()
        self.cancelled = 0
        self.error: BaseException | None = None
        self.gate: asyncio.Event | None = None

    def record(self, event_id: str) -> Change:
        change = Change(len(self.changes) + 1, event_id)
        self.changes.append(change)
        return change

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        self.calls += 1
        self.asked.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if self.error is not None:
            raise self.error
        later = [c for c in self.changes if c.seq > after][:limit]
        return ChangeBatch(later, len(self.changes))


def _typed(cache: FakeCache) -> Cache:
    return cache  # mypy checks here that the fake really implements the Protocol


def _typed_feed(feed: FakeFeed) -> ChangeFeed:
    return feed  # and here that this one implements the ChangeFeed Protocol


class Rig:
    """A GuardedCache over the fakes; ``async with`` starts it (unless interval is None)
    and closes it."""

    def __init__(
        self,
        threshold: int = 2,
        reset: float = RESET,
        clock: Callable[[], float] | None = None,
        interval: float | None = HOUR,
        fence: float = 0.0,
        guard_clock: Callable[[], float] | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.inner = FakeCache()
        self.feed = FakeFeed()
        self.breaker = CircuitBreaker(
            failure_threshold=threshold, reset_timeout=reset, clock=clock or self.clock
        )
        self.errors: list[str] = []
        self.guard = GuardedCache(
            _typed(self.inner),
            BUDGET,
            self.breaker,
            self.errors.append,
            fence=fence,
            clock=guard_clock or self.clock,
        )
        self.interval = interval

    async def start(self, interval: float) -> None:
        await self.guard.start(_typed_feed(self.feed), interval)

    async def __aenter__(self) -> Rig:
        if self.interval is not None:
            await self.start(self.interval)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.guard.close()

    def state(self) -> BreakerState:
        return self.breaker.state  # a call, so mypy does not narrow it between assertions

    def break_inner(self) -> None:
        for op in CACHE_OPS:
            self.inner.errors[op] = ConnectionError("down")

    def heal_inner(self) -> None:
        self.inner.errors.clear()

    def forget_calls(self) -> None:
        """Start the inner cache's records afresh (counts, order, events)."""
        self.inner.calls.clear()
        self.inner.log.clear()
        self.inner.called.clear()

    async def open_breaker(self) -> None:
        """Open the breaker through failing reads."""
        self.break_inner()
        for _ in range(self.breaker.failure_threshold):
            with pytest.raises(CacheUnavailable):
                await self.guard.lease(KEY, 1000)
        assert self.state() is BreakerState.OPEN

    async def lose_a_write(self) -> Change:
        """A write whose invalidation cannot be delivered: it is in the change log, the
        breaker is open, and the inner cache never saw it."""
        change = self.feed.record("a")
        self.inner.errors["invalidate"] = ConnectionError("down")
        await self.guard.invalidate(["item:a"], [change.seq])
        assert self.state() is BreakerState.OPEN
        assert self.inner.invalidated == []
        return change


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with Rig() as made:
        yield made


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), timeout=BOUND)


OPERATIONS: dict[str, Callable[[GuardedCache], Awaitable[object]]] = {
    "lease": lambda g: g.lease(KEY, 1000),
    "fill": lambda g: g.fill("0:item:x", "t", b"v", 1000),
    "ping": lambda g: g.ping(),
    "reconnect": lambda g: g.reconnect(),
    "watermark": lambda g: g.watermark(),
    "catch_up": lambda g: g.catch_up([Change(1, "x")], 1),
    "reset": lambda g: g.reset(1),
}


# --- budget and errors ----------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(OPERATIONS))
async def test_a_call_over_budget_raises_cache_unavailable(rig: Rig, op: str) -> None:
    """A hung inner call is abandoned after ``budget`` seconds and counted as an error."""
    rig.inner.gates[op] = asyncio.Event()  # never set: the inner call hangs
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(CacheUnavailable) as caught:
        # The outer bound only turns a missing budget into a failure instead of a hang.
        await asyncio.wait_for(OPERATIONS[op](rig.guard), timeout=BOUND)

    assert loop.time() - started < 1.0  # budget is 0.05 s: a generous bound
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert rig.inner.cancelled[op] == 1  # the hung call was abandoned, not left running
    assert rig.errors == [op]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ConnectionError("refused"), id="ConnectionError"),
        pytest.param(OSError("broken pipe"), id="OSError"),
        pytest.param(TimeoutError(), id="TimeoutError"),
        pytest.param(RedisConnectionError("redis down"), id="redis-ConnectionError"),
        pytest.param(ResponseError("NOSCRIPT"), id="redis-ResponseError"),
    ],
)
@pytest.mark.parametrize("op", sorted(OPERATIONS))
async def test_failures_of_the_cache_become_cache_unavailable(
    rig: Rig, op: str, error: Exception
) -> None:
    """A failure of the cache escapes only as CacheUnavailable (with the cause kept)."""
    rig.inner.errors[op] = error

    with pytest.raises(CacheUnavailable) as caught:
        await OPERATIONS[op](rig.guard)

    assert caught.value.__cause__ is error
    assert rig.errors == [op]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RuntimeError("boom"), id="RuntimeError"),
        pytest.param(KeyError("x"), id="KeyError"),
        pytest.param(AttributeError("typo"), id="AttributeError"),
    ],
)
@pytest.mark.parametrize("op", sorted(OPERATIONS))
async def test_a_programming_error_is_not_disguised_as_a_bypass(
    rig: Rig, op: str, error: Exception
) -> None:
    """A bug must surface (a 500 and a traceback in the log), not silently turn into a
    cache outage: it is raised as it is and leaves the breaker alone."""
    rig.inner.errors[op] = error

    with pytest.raises(type(error)) as caught:
        await OPERATIONS[op](rig.guard)

    assert caught.value is error
    assert rig.errors == []
    assert rig.guard.connected


async def test_failures_open_the_breaker_at_the_threshold(rig: Rig) -> None:
    """One failure leaves the breaker closed; the second (threshold 2) opens it."""
    rig.break_inner()

    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)
    assert rig.state() is BreakerState.CLOSED
    assert rig.guard.connected
    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)

    assert rig.state() is BreakerState.OPEN
    assert not rig.guard.connected


async def test_a_refusal_opens_the_breaker_at_once_and_hits_do_not_close_it(rig: Rig) -> None:
    """Redis answering with an error (OOM, READONLY...) is not a blip to count: the first
    refusal opens the breaker, with the reason /health gives."""
    rig.inner.errors["fill"] = ResponseError("OOM command not allowed")

    with pytest.raises(CacheUnavailable) as refused:
        await rig.guard.fill("k", "t", b"v", 1000)

    assert refused.value.reason == "refusing writes"
    assert rig.state() is BreakerState.OPEN
    assert rig.guard.state == "refusing writes"


async def test_a_write_lease_out_of_time_is_no_failure(rig: Rig) -> None:
    """Its budget is short on purpose (a hole costs less than waiting): missing it, however
    often, does not count against the breaker."""
    rig.inner.errors["lease_for_write"] = TimeoutError()

    for _ in range(5):
        with pytest.raises(CacheUnavailable):
            await rig.guard.lease_for_write(KEY, 1000)

    assert rig.state() is BreakerState.CLOSED


async def test_open_for_refusals_invalidations_still_go_through(rig: Rig) -> None:
    """Other processes may still serve hits: a write here must retire what it replaced
    (a refusing Redis runs removals). Open for a dead Redis, nothing is sent."""
    rig.inner.errors["lease"] = ResponseError("OOM command not allowed")
    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)
    rig.forget_calls()

    await rig.guard.invalidate([KEY.name], [1])
    await rig.guard.retire_all()
    assert rig.inner.calls["invalidate"] == 1
    assert rig.inner.calls["retire_all"] == 1

    rig.inner.errors["invalidate"] = ConnectionError("gone")
    await rig.guard.invalidate([KEY.name], [2])  # fails: now it is a dead Redis
    assert rig.guard.state == "disconnected"
    await rig.guard.invalidate([KEY.name], [3])
    assert rig.inner.calls["invalidate"] == 2


async def test_successful_calls_pass_arguments_and_results_through(rig: Rig) -> None:
    """The guard adds nothing to a working cache: same answers, same arguments (the seqs
    an invalidation delivers included)."""
    lookup = await rig.guard.lease(KEY, 1000)
    assert lookup == Lookup(LookupState.LEASED, "0:item:x", token="t")
    assert await rig.guard.fill("0:item:x", "t", b"v", 1000) is True

    await rig.guard.invalidate(["item:a"], [7])
    assert rig.inner.invalidated == [(["item:a"], [7])]
    rig.inner.mark = 41
    assert await rig.guard.watermark() == 41
    await rig.guard.catch_up([Change(42, "b")], 42)
    assert rig.inner.caught_up == [([Change(42, "b")], 42)]
    await rig.guard.reset(50)
    assert rig.inner.resets == [50]

    assert rig.state() is BreakerState.CLOSED
    assert rig.errors == []


# --- open breaker ---------------------------------------------------------------------------


async def test_while_open_calls_fail_at_once_without_touching_the_inner_cache(rig: Rig) -> None:
    """An open breaker means no cache I/O at all: reads, writes' invalidations and the
    relay all skip the inner cache (and the relay does not read the feed either)."""
    await rig.open_breaker()
    rig.heal_inner()
    before = rig.inner.calls.copy()
    feed_before = rig.feed.calls

    for op in sorted(OPERATIONS):
        with pytest.raises(CacheUnavailable):
            await OPERATIONS[op](rig.guard)
    await rig.guard.invalidate(["item:a"], [1])
    await rig.guard.retire_all()
    await rig.guard.relay()
    for _ in range(5):
        await asyncio.sleep(0)  # a (wrongly) started probe would get to run here

    assert rig.inner.calls == before
    assert rig.feed.calls == feed_before
    assert rig.state() is BreakerState.OPEN


async def test_a_failed_invalidate_is_swallowed_and_trips_the_breaker() -> None:
    """The write already succeeded, so the caller gets no error; but this process must stop
    reading a cache that may still hold the old value, even below the failure threshold."""
    async with Rig(threshold=5) as rig:  # one failure alone would not open it
        rig.inner.errors["invalidate"] = ConnectionError("down")

        await rig.guard.invalidate(["item:a"], [1])

        assert rig.state() is BreakerState.OPEN
        assert not rig.guard.connected
        assert rig.errors == ["invalidate"]
        with pytest.raises(CacheUnavailable):
            await rig.guard.lease(KEY, 1000)


async def test_a_failed_retire_all_is_swallowed_and_trips_the_breaker() -> None:
    """As for invalidate: retire_all never raises, and a failure opens the breaker at once."""
    async with Rig(threshold=5) as rig:
        rig.inner.errors["retire_all"] = ConnectionError("down")

        await rig.guard.retire_all()

        assert rig.state() is BreakerState.OPEN
        assert rig.errors == ["retire_all"]


async def test_a_failed_invalidate_leaves_nothing_to_replay(rig: Rig) -> None:
    """The guard remembers nothing: once the cache answers again, the probe sends no
    invalidation of its own; the lost write reaches the cache through the change log."""
    change = await rig.lose_a_write()
    rig.heal_inner()

    await rig.guard.probe()

    assert rig.inner.calls["invalidate"] == 1  # the failed attempt only
    assert rig.inner.calls["retire_all"] == 0
    assert rig.inner.caught_up == [([change], change.seq)]
    assert rig.state() is BreakerState.CLOSED


async def test_an_invalidate_while_open_does_not_restart_the_reset_period(rig: Rig) -> None:
    """Re-tripping an open breaker would push the probe back on every write: under steady
    writes it would never come."""
    await rig.lose_a_write()
    rig.clock.advance(RESET * 0.9)

    await rig.guard.invalidate(["item:b"], [2])
    await rig.guard.retire_all()

    assert rig.breaker.seconds_until_probe() == pytest.approx(RESET * 0.1)


# --- probe ----------------------------------------------------------------------------------


async def test_the_probe_reconnects_before_it_pings_then_relays(rig: Rig) -> None:
    """After an outage pooled connections are dead: drop them first, or the ping (and the
    relay) would fail on them. The relay comes last, on the checked connection."""
    await rig.open_breaker()
    rig.heal_inner()
    rig.feed.record("a")
    rig.forget_calls()

    await rig.guard.probe()

    assert rig.inner.log == ["reconnect", "ping", "watermark", "catch_up"]
    assert rig.state() is BreakerState.CLOSED


async def test_the_probe_relays_the_missed_write_before_it_closes_the_breaker(rig: Rig) -> None:
    """While the probe is still applying the change log, the breaker stays shut: no reader
    may see the cache before the lost invalidation has reached it."""
    change = await rig.lose_a_write()
    rig.heal_inner()
    rig.inner.gates["catch_up"] = gate = asyncio.Event()

    probe = asyncio.create_task(rig.guard.probe())
    await wait_for(rig.inner.called["catch_up"])
    assert rig.state() is not BreakerState.CLOSED
    with pytest.raises(CacheUnavailable):
        await rig.guard.lease(KEY, 1000)

    gate.set()
    await asyncio.wait_for(probe, timeout=BOUND)

    assert rig.inner.caught_up == [([change], change.seq)]
    assert rig.state() is BreakerState.CLOSED
    assert rig.inner.calls["lease"] == 0


async def test_the_probe_resets_a_cache_that_lost_its_watermark(rig: Rig) -> None:
    """A restarted Redis has lost its entries and its watermark: the probe resets it to the
    head of the log instead of applying changes."""
    await rig.lose_a_write()
    rig.feed.record("b")
    rig.heal_inner()
    rig.inner.mark = None

    await rig.guard.probe()

    assert rig.inner.resets == [2]
    assert rig.inner.caught_up == []
    assert rig.state() is BreakerState.CLOSED


@pytest.mark.parametrize(
    "failing",
    ["reconnect", "ping", "watermark", "catch_up", "store"],
)
async def test_a_failed_probe_keeps_the_breaker_open(rig: Rig, failing: str) -> None:
    """Reconnect, ping and the relay (the cache's side or the store's) must all succeed
    before the breaker closes; otherwise a new open period begins, and the next probe that
    succeeds still applies the missed write."""
    change = await rig.lose_a_write()
    rig.heal_inner()
    if failing == "store":
        rig.feed.error = StoreUnavailable()
    else:
        rig.inner.errors[failing] = ConnectionError("still down")
    rig.clock.advance(RESET + 0.1)
    assert rig.breaker.begin_probe()  # as the guard's task does, before it probes

    await rig.guard.probe()

    assert rig.state() is BreakerState.OPEN
    assert not rig.breaker.begin_probe()  # a new open period began
    assert rig.breaker.seconds_until_probe() == pytest.approx(RESET)

    rig.heal_inner()
    rig.feed.error = None
    await rig.guard.probe()
    assert rig.inner.caught_up[-1] == ([change], change.seq)
    assert rig.state() is BreakerState.CLOSED


@pytest.mark.parametrize("hanging", ["reconnect", "ping"])
async def test_a_hung_probe_gives_up_and_keeps_the_breaker_open(rig: Rig, hanging: str) -> None:
    """Reconnect and ping share a bound (four budgets): a cache that accepts connections but
    never answers does not hold the probe, or the breaker, forever."""
    await rig.open_breaker()
    rig.heal_inner()
    rig.inner.gates[hanging] = asyncio.Event()  # never set

    await asyncio.wait_for(rig.guard.probe(), timeout=BOUND)

    assert rig.inner.cancelled[hanging] == 1
    assert rig.state() is BreakerState.OPEN


# --- relay ----------------------------------------------------------------------------------


async def test_start_relays_once_before_it_returns() -> None:
    """A new in-process cache is reset while it is still empty, before the first request,
    not one interval later."""
    rig = Rig()
    rig.inner.mark = None  # a new cache: no watermark yet
    rig.feed.record("a")

    async with rig:
        assert rig.inner.resets == [1]
        assert rig.inner.mark == 1
        assert rig.state() is BreakerState.CLOSED


@pytest.mark.parametrize("down", ["cache", "store"])
async def test_start_with_a_dependency_down_still_starts_the_task(down: str) -> None:
    """The first relay may fail (the cache or the store is down at start-up): start() does
    not raise, and the background task runs all the same and relays once both answer."""
    rig = Rig(interval=TICK)
    change = rig.feed.record("a")
    if down == "cache":
        rig.inner.errors["watermark"] = ConnectionError("down")
    else:
        rig.feed.error = StoreUnavailable()

    async with rig:
        rig.heal_inner()
        rig.feed.error = None

        await wait_for(rig.inner.called["catch_up"])

        assert rig.inner.caught_up == [([change], change.seq)]
        assert rig.state() is BreakerState.CLOSED


async def test_a_relay_applies_new_changes_to_the_cache(rig: Rig) -> None:
    """One relay pass through the guard: what the log holds above the watermark reaches
    the inner cache, and the watermark follows."""
    first, second = rig.feed.record("a"), rig.feed.record("b")

    await rig.guard.relay()

    assert rig.inner.caught_up == [([first, second], second.seq)]
    assert rig.inner.mark == second.seq
    assert rig.state() is BreakerState.CLOSED
    assert rig.errors == []


async def test_the_timer_relays_a_write_while_closed_without_any_request() -> None:
    """A write made by another process (only its change-log record is visible here) reaches
    this cache on the relay's timer alone: no read or write in this process is needed."""
    async with Rig(interval=TICK) as rig:
        change = rig.feed.record("a")

        await wait_for(rig.inner.called["catch_up"])

        assert rig.inner.caught_up == [([change], change.seq)]
        assert rig.inner.calls["lease"] == 0
        assert rig.inner.calls["invalidate"] == 0
        assert rig.state() is BreakerState.CLOSED


@pytest.mark.parametrize("failing", ["watermark", "catch_up", "reset"])
async def test_a_relay_failure_in_the_cache_counts_against_the_breaker(failing: str) -> None:
    """The relay goes through the guard: a cache failure during it is swallowed (the task
    goes on), reported, and counted like any failed call (threshold 1: it opens)."""
    async with Rig(threshold=1) as rig:
        rig.feed.record("a")
        if failing == "reset":
            rig.inner.mark = None
        rig.inner.errors[failing] = ConnectionError("down")

        await rig.guard.relay()

        assert rig.errors == [failing]
        assert rig.state() is BreakerState.OPEN


async def test_two_failed_relays_in_a_row_open_the_breaker_whatever_hits_between(
    rig: Rig,
) -> None:
    """A relay failure is not a lost invalidation (the change stays in the log), so one
    trips nothing by itself; but hits in between do not hide two in a row."""
    rig.inner.errors["watermark"] = ConnectionError("down")

    await rig.guard.relay()
    assert rig.state() is BreakerState.CLOSED
    await rig.guard.lease(KEY, 1000)  # a hit: the breaker's own count is reset
    await rig.guard.relay()

    assert rig.state() is BreakerState.OPEN
    assert rig.errors == ["watermark", "watermark"]


async def test_a_relay_pass_that_works_starts_the_count_again(rig: Rig) -> None:
    rig.inner.errors["watermark"] = ConnectionError("down")
    await rig.guard.relay()
    rig.heal_inner()
    await rig.guard.relay()
    rig.inner.errors["watermark"] = ConnectionError("down")
    await rig.guard.relay()

    assert rig.state() is BreakerState.CLOSED


async def test_a_relay_failure_in_the_store_leaves_the_breaker_alone() -> None:
    """The store being down says nothing about the cache: the failure is swallowed, not
    counted against the breaker, and the next pass delivers the change."""
    async with Rig(threshold=1) as rig:
        change = rig.feed.record("a")
        rig.feed.error = StoreUnavailable()

        await rig.guard.relay()

        assert rig.state() is BreakerState.CLOSED
        assert rig.errors == []
        assert rig.inner.caught_up == []

        rig.feed.error = None
        await rig.guard.relay()
        assert rig.inner.caught_up == [([change], change.seq)]


# --- the background task --------------------------------------------------------------------


async def test_an_idle_guard_probes_on_its_timer_and_recovers() -> None:
    """No traffic at all after the outage (e.g. only /metrics is scraped): the breaker must
    still close, with the lost write applied. This needs the loop's real timer, so the reset
    period is short and the wait is for the relay's call, bounded."""
    async with Rig(reset=0.02, clock=time.monotonic, interval=TICK) as rig:
        change = await rig.lose_a_write()
        rig.heal_inner()
        rig.forget_calls()

        await wait_for(rig.inner.called["catch_up"])
        await settle(lambda: rig.state() is BreakerState.CLOSED)

        assert rig.inner.log[:2] == ["reconnect", "ping"]
        assert rig.inner.caught_up == [([change], change.seq)]
        assert rig.inner.calls["invalidate"] == 0


async def test_while_open_the_timer_waits_for_the_probe_not_for_the_relay_interval() -> None:
    """Started while open with an hour-long relay interval, the task still probes as soon
    as the breaker's reset period is over."""
    async with Rig(reset=0.02, clock=time.monotonic, interval=None) as rig:
        change = await rig.lose_a_write()
        rig.heal_inner()

        await rig.start(HOUR)
        await wait_for(rig.inner.called["catch_up"])
        await settle(lambda: rig.state() is BreakerState.CLOSED)

        assert rig.inner.caught_up == [([change], change.seq)]


async def test_invalidations_while_open_do_not_postpone_the_probe() -> None:
    """The probe checks the cache every reset_timeout seconds, even under steady writes:
    a write at 0.9 x reset_timeout does not stop the probe at 1.1 x."""
    async with Rig(interval=TICK) as rig:
        await rig.lose_a_write()
        rig.heal_inner()
        rig.clock.advance(RESET * 0.9)
        await rig.guard.invalidate(["item:b"], [2])  # a write while open
        rig.forget_calls()
        rig.clock.advance(RESET * 0.2)

        await wait_for(rig.inner.called["ping"])
        await settle(lambda: rig.state() is BreakerState.CLOSED)

        assert rig.inner.calls["invalidate"] == 0  # the guard replays nothing itself


async def test_close_cancels_the_task_during_a_relay() -> None:
    """Shutdown does not wait for a store read the relay is blocked on."""
    async with Rig(interval=TICK) as rig:
        rig.feed.gate = asyncio.Event()  # never set
        rig.feed.asked.clear()  # start() has read the feed once already
        await wait_for(rig.feed.asked)

        await asyncio.wait_for(rig.guard.close(), timeout=BOUND)

        assert rig.feed.cancelled == 1
        assert rig.inner.calls["close"] == 1


async def test_close_cancels_the_task_during_a_probe() -> None:
    """Shutdown does not wait for a probe stuck in the cache; the breaker stays shut."""
    async with Rig(interval=TICK) as rig:
        await rig.lose_a_write()
        rig.heal_inner()
        rig.inner.gates["watermark"] = asyncio.Event()  # the probe's relay hangs
        rig.forget_calls()
        rig.clock.advance(RESET + 0.1)
        await wait_for(rig.inner.called["watermark"])

        await asyncio.wait_for(rig.guard.close(), timeout=BOUND)

        assert rig.inner.cancelled["watermark"] == 1
        assert rig.inner.calls["close"] >= 1
        assert rig.state() is not BreakerState.CLOSED


# --- breaker state against concurrent calls ------------------------------------------------


async def test_a_call_that_succeeds_while_open_does_not_close_the_breaker(rig: Rig) -> None:
    """A lease started while closed finishes after an invalidate failed: the breaker must
    stay open until the probe has relayed the write, or readers see the old value."""
    rig.inner.gates["lease"] = gate = asyncio.Event()
    reader = asyncio.create_task(rig.guard.lease(KEY, 1000))
    await settle(lambda: rig.inner.entered["lease"] == 1)
    await rig.lose_a_write()

    gate.set()
    await reader

    assert rig.state() is BreakerState.OPEN
    assert rig.inner.caught_up == []


@pytest.mark.parametrize("fails", [False, True])
async def test_an_invalidation_during_the_probe_is_sent_and_a_failed_one_keeps_it_open(
    fails: bool,
) -> None:
    """A write committed while the probe runs may come after the probe's relay read the
    log: its invalidation is sent, not skipped; if it fails, the probe does not close the
    breaker (the model's probe_spoiled_by_skips=False race)."""
    async with Rig() as rig:
        await rig.lose_a_write()
        rig.heal_inner()
        rig.inner.gates["catch_up"] = gate = asyncio.Event()
        rig.clock.advance(RESET)
        assert rig.breaker.begin_probe()
        probing = asyncio.create_task(rig.guard.probe())
        await wait_for(rig.inner.called["catch_up"])  # the probe has read the log

        write = rig.feed.record("b")
        if fails:
            rig.inner.errors["invalidate"] = ConnectionError("down")
        await rig.guard.invalidate(["item:b"], [write.seq])
        gate.set()
        await probing

        assert (["item:b"], [write.seq]) in rig.inner.invalidated or fails
        assert rig.state() is (BreakerState.OPEN if fails else BreakerState.CLOSED)


async def test_after_the_probe_closed_it_one_failed_relay_opens_nothing() -> None:
    """The count of failed passes starts afresh once the probe has relayed."""
    async with Rig() as rig:
        rig.inner.errors["watermark"] = ConnectionError("down")
        await rig.guard.relay()
        await rig.guard.relay()
        assert rig.state() is BreakerState.OPEN
        rig.heal_inner()
        await rig.guard.probe()
        assert rig.state() is BreakerState.CLOSED

        rig.inner.errors["watermark"] = ConnectionError("down")
        await rig.guard.relay()

        assert rig.state() is BreakerState.CLOSED


# --- the fence and the gate -------------------------------------------------------------------

FENCE = 1.0


async def test_the_gate_closes_when_no_relay_pass_started_within_the_fence() -> None:
    """Reads use the cache only while the last completed pass started less than a fence
    ago; past it they bypass (no call, nothing counted against the breaker), and the next
    completed pass opens the gate again."""
    async with Rig(fence=FENCE) as rig:  # start() ran one pass at the clock's now
        await rig.guard.lease(KEY, 1000)
        rig.clock.advance(FENCE - 0.01)
        await rig.guard.lease(KEY, 1000)
        rig.clock.advance(0.02)
        rig.forget_calls()
        with pytest.raises(CacheUnavailable):
            await rig.guard.lease(KEY, 1000)
        assert rig.inner.calls["lease"] == 0  # not even asked
        assert rig.errors == []
        assert rig.state() is BreakerState.CLOSED
        assert rig.guard.state == "connected"
        await rig.guard.relay()
        await rig.guard.lease(KEY, 1000)


async def test_a_failed_pass_does_not_keep_the_gate_open() -> None:
    async with Rig(fence=FENCE) as rig:
        rig.clock.advance(0.6)
        rig.feed.error = StoreUnavailable("locked")
        await rig.guard.relay()  # failed: the store did not answer
        rig.inner.errors["watermark"] = ConnectionError("slow")
        rig.feed.error = None
        await rig.guard.relay()  # failed: the cache did not answer
        rig.clock.advance(0.6)  # 1.2 s since the last pass that completed started
        with pytest.raises(CacheUnavailable):
            await rig.guard.lease(KEY, 1000)


async def test_the_gate_counts_from_the_start_of_a_pass_not_its_end() -> None:
    """A pass that started before a write's commit may have read the log before it: its
    completing later proves nothing about that write."""
    async with Rig(fence=FENCE) as rig:
        rig.feed.gate = asyncio.Event()
        rig.feed.asked.clear()
        started = asyncio.create_task(rig.guard.relay())
        await wait_for(rig.feed.asked)
        rig.clock.advance(0.8)  # the pass is slow
        rig.feed.gate.set()
        await started
        rig.clock.advance(0.3)  # 0.3 s after it completed, 1.1 s after it started
        with pytest.raises(CacheUnavailable):
            await rig.guard.lease(KEY, 1000)


async def test_the_probe_s_pass_opens_the_gate() -> None:
    async with Rig(fence=FENCE) as rig:
        await rig.open_breaker()
        rig.clock.advance(RESET)
        rig.heal_inner()
        assert rig.breaker.begin_probe()
        await rig.guard.probe()
        assert rig.state() is BreakerState.CLOSED
        await rig.guard.lease(KEY, 1000)  # 3 s after start(): only the probe's pass counts


async def test_no_gate_for_a_cache_no_other_process_reads() -> None:
    async with Rig(fence=0.0) as rig:
        rig.clock.advance(HOUR)
        await rig.guard.lease(KEY, 1000)


async def test_a_write_whose_invalidation_failed_returns_only_past_the_fence() -> None:
    fence = 0.2
    async with Rig(fence=fence, guard_clock=time.monotonic) as rig:
        rig.inner.errors["invalidate"] = ConnectionError("down")
        began = time.monotonic()
        await rig.guard.invalidate(["item:a"], [1])
        assert time.monotonic() - began >= fence
        began = time.monotonic()
        await rig.guard.retire_all()  # open now: not even tried, and still fenced
        assert time.monotonic() - began >= fence


async def test_a_delivered_invalidation_does_not_wait_for_the_fence() -> None:
    async with Rig(fence=HOUR, guard_clock=time.monotonic) as rig:
        await asyncio.wait_for(rig.guard.invalidate(["item:a"], [1]), BOUND)
        await asyncio.wait_for(rig.guard.retire_all(), BOUND)
