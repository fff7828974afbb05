"""The cache protocol's model (cache_protocol.py), explored over every interleaving.

The protocol (version 2, with the two amendments the model showed it needs, and the fence
of cache/guard.py) must keep the promise, which has no excuse, in every world below;
without the fence, protocol.md as written, and each variant of the old code, it must break
it, and the run that does is printed (``pytest -s`` shows it).

The worlds here are sized to run in seconds; EVENTAPI_MODEL_DEEP=1 adds larger ones
(minutes each).
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from tests.cache.model.cache_protocol import (
    REF_INVALIDATE,
    CacheProtocol,
    Config,
    State,
    Writer,
    summary,
)
from tests.cache.model.explore import Outcome, explore

NO_FAULTS = Config(evictions=0, flushes=0, crashes=0, refusals=0, timeouts=0, relay_passes=1)
ITEM_READ = replace(NO_FAULTS, reads=("item",))

# name: (world, the least number of states it must explore, so that no test passes by
# exploring next to nothing). Between them they have every kind of fault, each read, and
# both placements of the updates; DEEP has them together.
FIXED: dict[str, tuple[Config, int]] = {
    "no read; an eviction, a refusal, a crash": (
        replace(NO_FAULTS, reader=False, evictions=1, refusals=1, crashes=1),
        11_000,
    ),
    "item read; an eviction": (replace(ITEM_READ, evictions=1), 4_500),
    "list read; a refusal": (replace(NO_FAULTS, reads=("list",), refusals=1), 7_500),
    "no read; a time-out; two relay passes": (
        replace(NO_FAULTS, reader=False, timeouts=1, relay_passes=2),
        3_000,
    ),
    "no read; two time-outs; three relay passes": (
        replace(NO_FAULTS, reader=False, timeouts=2, relay_passes=3),
        15_000,
    ),
    "item read; a time-out": (replace(ITEM_READ, timeouts=1), 4_000),
    "item read; a flush": (replace(ITEM_READ, flushes=1), 6_500),
    "both updates in one process; item read; a refusal, a crash": (
        replace(ITEM_READ, writer_procs=(0, 0), refusals=1, crashes=1),
        7_500,
    ),
}

DEEP: dict[str, tuple[Config, int]] = {
    "item read; an eviction, a refusal, a crash": (
        replace(ITEM_READ, evictions=1, refusals=1, crashes=1),
        45_000,
    ),
    "any read; an eviction, a refusal, a crash": (
        replace(NO_FAULTS, evictions=1, refusals=1, crashes=1),
        100_000,
    ),
    "no read; every fault but a crash; two relay passes": (
        replace(
            NO_FAULTS, reader=False, evictions=1, flushes=1, refusals=1, timeouts=1, relay_passes=2
        ),
        500_000,
    ),
    "item read; an eviction, a refusal, a time-out; two relay passes": (
        replace(ITEM_READ, evictions=1, refusals=1, timeouts=1, relay_passes=2),
        500_000,
    ),
    "item read; a time-out run late by Redis, an eviction; two relay passes": (
        replace(ITEM_READ, evictions=1, timeouts=1, relay_passes=2, late_timeouts=True),
        100_000,
    ),
    "both updates in one process; every fault but a flush": (
        replace(NO_FAULTS, writer_procs=(0, 0), evictions=1, crashes=1, refusals=1, timeouts=1),
        100_000,
    ),
    "list read; two evictions, a flush, a time-out": (
        replace(NO_FAULTS, reads=("list",), evictions=2, flushes=1, timeouts=1),
        100_000,
    ),
}

deep = pytest.mark.skipif(
    not os.environ.get("EVENTAPI_MODEL_DEEP"), reason="minutes each: EVENTAPI_MODEL_DEEP=1"
)


def describe(outcome: Outcome[State]) -> str:
    lines = [f"{outcome.states} states, {outcome.transitions} steps, depth {outcome.depth}"]
    if outcome.violation is not None:
        lines.append(f"VIOLATION: {outcome.violation}")
        lines += [f"{n:3}. {label}" for n, label in enumerate(outcome.trace, 1)]
        lines += [f"     {line}" for line in summary(outcome.last).splitlines()]
        lines.append("     (with fresh tokens, e0 and g0 name the current epoch and generation")
        lines.append("     after every step: a fresh token in one step is e0 or g0 in the next)")
    return "\n".join(lines)


def explored(config: Config) -> Outcome[State]:
    outcome = CacheProtocol(config).run()
    print(describe(outcome))
    return outcome


def keeps_its_promise(config: Config, least: int) -> None:
    outcome = explored(config)
    assert outcome.ok, describe(outcome)
    assert outcome.states >= least, describe(outcome)


def breaks_its_promise(config: Config) -> str:
    """The steps of the (shortest) run that breaks the promise, one a line."""
    outcome = explored(config)
    assert not outcome.ok, describe(outcome)
    return "\n".join(outcome.trace)


@pytest.mark.parametrize("world", FIXED)
def test_the_protocol_keeps_its_promise(world: str) -> None:
    keeps_its_promise(*FIXED[world])


@deep
@pytest.mark.parametrize("world", DEEP)
def test_the_protocol_keeps_its_promise_in_larger_worlds(world: str) -> None:
    keeps_its_promise(*DEEP[world])


# protocol.md as written: each amendment is needed.

AS_WRITTEN_CATCH_UP = replace(
    NO_FAULTS, reader=False, evictions=1, refusals=1, catch_up_resets=False
)
AS_WRITTEN_PROBE = replace(
    NO_FAULTS,
    reader=False,
    timeouts=1,
    relay_passes=1,
    writer_procs=(0, 0),
    invalidate_during_probe=False,
)


def test_as_written_a_catch_up_without_watermark_breaks_the_promise() -> None:
    """CATCH_UP finding no watermark does nothing, and its relay pass ends as if it had
    applied the changes: with the watermark evicted between the pass's GET and its
    CATCH_UP, the process serves the old value after the pass that was to end it."""
    trace = breaks_its_promise(AS_WRITTEN_CATCH_UP)
    assert "[watermark evicted] -> no watermark: nothing done" in trace


def test_as_written_a_probe_closes_over_a_skipped_invalidation() -> None:
    """The probe closes the breaker after its relay pass, although an update of its own
    process committed after that pass read the log, and had its invalidation skipped
    (half-open): the process serves the value its own acknowledged write replaced."""
    trace = breaks_its_promise(AS_WRITTEN_PROBE)
    assert "skipped, breaker half-open" in trace
    assert trace.splitlines()[-1].startswith("P0 relay: probe: SET probe key -> OK: closed")


# Without the fence: the window it closes.

UNFENCED = replace(NO_FAULTS, reader=False, writer_procs=(0,), refusals=1, fenced=False)


def test_without_the_fence_a_failed_invalidation_breaks_the_promise() -> None:
    """One update, its invalidation refused: acknowledged at once, it leaves the value it
    replaced in the cache, where another process (its breaker closed, nothing tells it)
    finds it until its relay applies the change. The smallest world: one update, no
    read (the check's reads suffice), one fault. With the fence the same world keeps the
    promise: the other process is gated until a relay pass of its own has applied it."""
    trace = breaks_its_promise(UNFENCED)
    assert "refused" in trace.splitlines()[-1]
    assert trace.splitlines()[-1].endswith(f"acknowledged ({REF_INVALIDATE})")
    keeps_its_promise(replace(UNFENCED, fenced=True), 80)


# The old code: each variant breaks the promise.

LATE_LEASE = replace(NO_FAULTS, reads=("item",), lease_before_commit=False)
ZERO_COUNTERS = replace(NO_FAULTS, evictions=1, missing_counter_is_zero=True)


def test_a_write_lease_taken_after_the_commit_breaks_the_promise() -> None:
    """The write lease, sent beside the store write, lands after a later update's warm
    write; the older update's warm write then puts its value over the newer one."""
    trace = breaks_its_promise(LATE_LEASE)
    assert "REDIS: runs W" in trace
    assert "warm: stored" in trace.splitlines()[-1]


def test_missing_counters_read_as_zero_break_the_promise() -> None:
    """A missing generation (or epoch) read as 0 names again the entries it retired,
    which still hold what was replaced."""
    assert "evicted" in breaks_its_promise(ZERO_COUNTERS)


def test_oom_unsafe_scripts_cost_availability_not_the_promise() -> None:
    """INVALIDATE, CATCH_UP and RESET refused under OOM like any write: the promise holds
    all the same, as a refusal trips the breaker at once (and READONLY refuses them
    anyway). What the OOM-safe scripts buy is a breaker that stays closed."""
    keeps_its_promise(replace(NO_FAULTS, reader=False, refusals=1, oom_safe_scripts=False), 1_000)


# The model itself.


@pytest.mark.parametrize(
    ("world", "holds"),
    [
        (NO_FAULTS, True),
        (UNFENCED, False),
        (AS_WRITTEN_CATCH_UP, False),
        (AS_WRITTEN_PROBE, False),
        (LATE_LEASE, False),
        (ZERO_COUNTERS, False),
    ],
    ids=[
        "no faults",
        "no fence",
        "as written: catch-up",
        "as written: probe",
        "late lease",
        "zero",
    ],
)
def test_the_reductions_change_no_verdict(world: Config, holds: bool) -> None:
    """Without the reductions that are not exact (faults at any step, every read step,
    every lease and relay pass kept), the same worlds give the same verdicts."""
    outcome = explored(replace(world, reduce=False))
    assert outcome.ok is holds, describe(outcome)


def test_the_check_sees_a_stale_value() -> None:
    """An update acknowledged while the cache still holds what it replaced (v0, in the
    initial state): a violation, in both processes, and for the list page too."""
    model = CacheProtocol(NO_FAULTS)
    initial = model.initial()
    assert model.check(initial) is None
    acked = initial._replace(
        log=(0,), writers=(Writer("done", seq=1), Writer()), acked=frozenset({0})
    )
    assert model.check(acked) is not None
    items_gone = acked._replace(redis=acked.redis._replace(values=(((0, 0), 0),)))
    assert "list read" in (model.check(items_gone) or "")
    # Its invalidation failed: the other process is gated (reads the store) until it
    # completes a relay pass that read it from the log. Without the fence, it is not.
    failed = acked._replace(writers=(Writer("done", seq=1, failed=True), Writer()))
    assert "P0" in (model.check(failed) or "")
    assert model.check(failed._replace(breakers=("open", "closed"))) is None
    unfenced = CacheProtocol(replace(NO_FAULTS, fenced=False))
    assert "P1" in (unfenced.check(failed._replace(breakers=("open", "closed"))) or "")
    relayed = failed._replace(caught=(frozenset(), frozenset({0})))
    assert model.check(relayed) is not None
    assert model.check(relayed._replace(breakers=("open", "closed"))) is not None
    assert model.check(relayed._replace(breakers=("open", "open"))) is None


def test_explore_finds_a_shortest_trace_and_merges_keys() -> None:
    """Two counters stepped in any order: the first state where both reach 2 is four
    steps away, whichever way; with order ignored (the key), fewer states are explored."""

    def steps(state: tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
        a, b = state
        return [(f"a{a + 1}", (a + 1, b)), (f"b{b + 1}", (a, b + 1))]

    def check(state: tuple[int, int]) -> str | None:
        return "both at 2" if state == (2, 2) else None

    def bounded(state: tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
        return [step for step in steps(state) if max(step[1]) <= 3]

    found = explore((0, 0), steps, check)
    assert found.violation == "both at 2"
    assert sorted(found.trace) == ["a1", "a2", "b1", "b2"]
    assert found.last == (2, 2)
    everything = explore((0, 0), bounded, lambda state: None)
    assert (everything.ok, everything.states, everything.depth) == (True, 16, 6)
    unordered = explore((0, 0), bounded, lambda state: None, key=lambda s: tuple(sorted(s)))
    assert unordered.states == 10
