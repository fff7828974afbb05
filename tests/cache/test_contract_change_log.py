"""Cache contract, change-log part: the watermark, delivered seqs, catch_up and reset behave
the same on every backend (MemoryCache and RedisCache on a private redis-server).

These are the cache's half of "no invalidation is ever lost": the relay (cache/relay.py)
relies on exactly these rules to apply each recorded write once, and only once, more.
"""

from __future__ import annotations

from eventapi.cache.base import CacheKey, LookupState, item_key
from eventapi.changes import Change
from tests.cache.test_contract import LIST, Harness, harness, put, state_of

__all__ = ["harness"]  # the parametrised fixture, shared with test_cache.py

A = item_key("a" * 24)
B = item_key("b" * 24)


def change(seq: int, key: CacheKey | None) -> Change:
    return Change(seq, None if key is None else key.name.removeprefix("item:"))


async def test_a_catch_up_without_a_watermark_resets(harness: Harness) -> None:
    """A cache with no watermark (new, or lost since the relay read it) cannot say what was
    applied: a catch-up retires everything and sets the watermark, as a reset does (doing
    nothing would end the relay's pass as if it had applied the changes: tests/cache/model)."""
    cache = harness.cache
    await put(cache, A, b"a")
    await put(cache, B, b"b")

    assert await cache.watermark() is None
    await cache.catch_up([change(1, A)], through=1)

    assert await cache.watermark() == 1
    assert await state_of(cache, A) is LookupState.LEASED
    assert await state_of(cache, B) is LookupState.LEASED


async def test_reset_retires_everything_and_sets_the_watermark(harness: Harness) -> None:
    cache = harness.cache
    await put(cache, A, b"a")
    await put(cache, LIST, b"[]")

    await cache.reset(7)

    assert await cache.watermark() == 7
    assert await state_of(cache, A) is LookupState.LEASED
    assert await state_of(cache, LIST) is LookupState.LEASED


async def test_reset_never_lowers_the_watermark(harness: Harness) -> None:
    await harness.cache.reset(9)
    await harness.cache.reset(4)

    assert await harness.cache.watermark() == 9


async def test_catch_up_applies_changes_above_the_watermark(harness: Harness) -> None:
    cache = harness.cache
    await cache.reset(3)
    await put(cache, A, b"a")
    await put(cache, B, b"b")
    await put(cache, LIST, b"[]")

    await cache.catch_up([change(3, B), change(4, A)], through=4)

    assert await cache.watermark() == 4
    assert await state_of(cache, A) is LookupState.LEASED
    assert await state_of(cache, B) is LookupState.HIT  # seq 3 was already applied
    assert await state_of(cache, LIST) is LookupState.LEASED


async def test_a_delivered_change_is_not_applied_again(harness: Harness) -> None:
    """The writer's own invalidation told the cache its seq: the relay must not delete the
    fresh value filled since."""
    cache = harness.cache
    await cache.reset(0)
    await cache.invalidate([A.name], seqs=[1])
    assert await cache.watermark() == 1  # 1 directly follows 0
    await put(cache, A, b"fresh")

    await cache.catch_up([change(1, A)], through=1)

    assert await state_of(cache, A) is LookupState.HIT


async def test_delivered_seqs_above_a_gap_wait_for_it(harness: Harness) -> None:
    cache = harness.cache
    await cache.reset(0)
    await cache.invalidate([B.name], seqs=[2])
    assert await cache.watermark() == 0  # seq 1 is not delivered yet
    await put(cache, A, b"old")
    await put(cache, B, b"fresh")

    await cache.catch_up([change(1, A), change(2, B)], through=2)

    assert await cache.watermark() == 2
    assert await state_of(cache, A) is LookupState.LEASED  # undelivered: applied
    assert await state_of(cache, B) is LookupState.HIT  # delivered: left alone


async def test_catch_up_without_new_changes_keeps_list_pages(harness: Harness) -> None:
    cache = harness.cache
    await cache.reset(5)
    await put(cache, LIST, b"[]")

    await cache.catch_up([change(5, A)], through=5)

    assert await state_of(cache, LIST) is LookupState.HIT


async def test_an_unsettled_change_is_applied_but_not_passed(harness: Harness) -> None:
    cache = harness.cache
    await cache.reset(0)
    await put(cache, A, b"old")

    await cache.catch_up([change(1, A)], through=0)

    assert await cache.watermark() == 0
    refill = await cache.lease(A, 60_000)
    assert refill.state is LookupState.LEASED
    assert refill.token is not None
    assert await cache.fill(refill.resolved, refill.token, b"read before the write", 60_000)
    await cache.catch_up([change(1, A)], through=1)  # settled now: applied once more
    assert await cache.watermark() == 1
    assert await state_of(cache, A) is LookupState.LEASED


async def test_a_change_to_everything_retires_every_entry(harness: Harness) -> None:
    cache = harness.cache
    await cache.reset(0)
    await put(cache, A, b"a")
    await put(cache, B, b"b")

    await cache.catch_up([change(1, None)], through=1)

    assert await state_of(cache, A) is LookupState.LEASED
    assert await state_of(cache, B) is LookupState.LEASED
    assert await cache.watermark() == 1


async def test_invalidate_revokes_a_lease_given_before_it(harness: Harness) -> None:
    cache = harness.cache
    await cache.reset(0)
    lookup = await cache.lease(A, 60_000)
    assert lookup.token is not None

    await cache.catch_up([change(1, A)], through=1)

    assert await cache.fill(lookup.resolved, lookup.token, b"old", 60_000) is False
