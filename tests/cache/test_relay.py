"""relay.catch_up over a real MemoryCache and a scripted change log.

The feed is a fake on purpose: these tests choose exactly which changes are recorded,
which have settled (``head``) and whether the log was pruned (``gap``), and check what the
relay leaves in the cache and where it leaves the watermark.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventapi.cache.base import CacheKey, LookupState, item_key, list_key
from eventapi.cache.memory import MemoryCache
from eventapi.cache.relay import BATCH, catch_up
from eventapi.changes import EVERYTHING, Change, ChangeBatch, ChangeFeed

TTL_MS = 60_000
PAGE = list_key("page")


class FakeFeed:
    """A change log in memory: ``record`` appends a change (settled unless told otherwise)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.head = 0
        self.gap = False
        self.asked: list[tuple[int, int]] = []

    def record(self, event_id: str | None, settled: bool = True) -> int:
        seq = len(self.changes) + 1
        self.changes.append(Change(seq, event_id))
        if settled:
            self.head = seq
        return seq

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        self.asked.append((after, limit))
        later = [c for c in self.changes if c.seq > after][:limit]
        return ChangeBatch(later, self.head, gap=self.gap)


def _typed(feed: FakeFeed) -> ChangeFeed:
    return feed  # mypy checks here that the fake really implements the Protocol


async def put(cache: MemoryCache, key: CacheKey, value: bytes) -> None:
    lookup = await cache.lease(key, TTL_MS)
    assert lookup.state is LookupState.LEASED
    assert lookup.token is not None
    assert await cache.fill(lookup.resolved, lookup.token, value, TTL_MS)


def cached(cache: MemoryCache, key: CacheKey) -> bytes | None:
    return cache.peek(key)  # takes no lease, so a later put() can still take one


async def fill_all(cache: MemoryCache, names: Sequence[str]) -> None:
    for name in names:
        await put(cache, item_key(name), name.encode())
    await put(cache, PAGE, b"page")


def present(cache: MemoryCache, names: Sequence[str]) -> set[str]:
    return {name for name in names if cached(cache, item_key(name)) is not None}


async def relayed_cache() -> MemoryCache:
    """A cache the relay has already reset (watermark 0), holding a, b, c and a list page."""
    cache = MemoryCache()
    await cache.reset(0)
    await fill_all(cache, ["a", "b", "c"])
    return cache


# --- reset ----------------------------------------------------------------------------------


async def test_a_fresh_cache_is_reset_to_the_head_of_the_log() -> None:
    """Without a watermark the log cannot say what the cache missed: everything is retired
    (even entries no change names) and the watermark starts at the head."""
    cache = MemoryCache()
    await fill_all(cache, ["a", "z"])
    feed = FakeFeed()
    feed.record("a")
    feed.record("b")
    assert await cache.watermark() is None

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "z"]) == set()
    assert cached(cache, PAGE) is None
    assert await cache.watermark() == 2
    assert feed.asked == [(0, BATCH)]


async def test_a_fresh_cache_over_an_empty_log_gets_watermark_zero() -> None:
    """An empty log still gives a known watermark, so the next pass applies changes."""
    cache = MemoryCache()
    feed = FakeFeed()

    await catch_up(cache, _typed(feed))

    assert await cache.watermark() == 0
    await fill_all(cache, ["a", "b"])
    feed.record("a")
    await catch_up(cache, _typed(feed))
    assert present(cache, ["a", "b"]) == {"b"}
    assert await cache.watermark() == 1


async def test_a_gap_in_the_log_resets_the_cache() -> None:
    """Records after the watermark were pruned: the batch cannot say what changed."""
    cache = await relayed_cache()
    feed = FakeFeed()
    feed.record("a")
    feed.gap = True

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == set()
    assert await cache.watermark() == 1


async def test_a_full_batch_resets_the_cache_to_the_head() -> None:
    """BATCH changes in one read means the relay may be further behind than it can see."""
    cache = await relayed_cache()
    feed = FakeFeed()
    for _ in range(BATCH + 5):
        feed.record("a")

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == set()  # b and c were never changed
    assert await cache.watermark() == BATCH + 5


async def test_exactly_batch_changes_also_reset() -> None:
    """A batch exactly BATCH long cannot tell whether more follow: reset, not apply."""
    cache = await relayed_cache()
    feed = FakeFeed()
    for _ in range(BATCH):
        feed.record("a")

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == set()
    assert await cache.watermark() == BATCH


async def test_one_change_fewer_than_batch_is_applied_not_reset() -> None:
    """The boundary on the other side: entries no change names survive."""
    cache = await relayed_cache()
    feed = FakeFeed()
    for _ in range(BATCH - 1):
        feed.record("a")

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == {"b", "c"}
    assert await cache.watermark() == BATCH - 1


# --- applying changes -----------------------------------------------------------------------


async def test_changes_above_the_watermark_are_applied_and_the_watermark_follows() -> None:
    """Named items and every list page are retired; others survive; the watermark moves to
    the last settled change and the next pass reads only what comes after it."""
    cache = await relayed_cache()
    feed = FakeFeed()
    feed.record("a")
    feed.record("b")

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == {"c"}
    assert cached(cache, PAGE) is None
    assert await cache.watermark() == 2

    await catch_up(cache, _typed(feed))
    assert feed.asked[-1] == (2, BATCH)


async def test_a_pass_with_nothing_new_retires_nothing() -> None:
    """Relaying on a timer must not empty the cache: no change, no retirement, list pages
    included."""
    cache = await relayed_cache()
    feed = FakeFeed()

    await catch_up(cache, _typed(feed))
    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == {"a", "b", "c"}
    assert cached(cache, PAGE) == b"page"
    assert await cache.watermark() == 0


async def test_a_change_delivered_in_order_moves_the_watermark_at_once() -> None:
    """invalidate(names, seqs) of the next seq advances the watermark itself, so the relay
    does not apply that change again and the value cached after the write survives."""
    cache = await relayed_cache()
    feed = FakeFeed()
    seq = feed.record("a")
    await cache.invalidate(["item:a"], [seq])
    assert await cache.watermark() == seq
    await put(cache, item_key("a"), b"a after the write")

    await catch_up(cache, _typed(feed))

    assert cached(cache, item_key("a")) == b"a after the write"
    assert await cache.watermark() == seq


async def test_a_change_delivered_out_of_order_is_not_applied_again() -> None:
    """Seq 2 was delivered by its writer, seq 1 was not (its invalidation failed): the relay
    applies 1 only, so the refill of a made after write 2 survives."""
    cache = await relayed_cache()
    feed = FakeFeed()
    missed = feed.record("b")
    delivered = feed.record("a")
    await cache.invalidate(["item:a"], [delivered])
    assert await cache.watermark() == 0  # seq 1 still missing below it
    await put(cache, item_key("a"), b"a after the write")

    await catch_up(cache, _typed(feed))

    assert cached(cache, item_key("a")) == b"a after the write"
    assert present(cache, ["b", "c"]) == {"c"}
    assert await cache.watermark() == max(missed, delivered)


async def test_an_unsettled_change_is_applied_on_every_pass_until_it_settles() -> None:
    """A change above head may belong to a write still under way: it is applied, but the
    watermark stays below it, so a value refilled before the write lands is dropped again
    on the next pass; once settled it is applied a last time and left behind."""
    cache = await relayed_cache()
    feed = FakeFeed()
    feed.record("a")
    pending = feed.record("b", settled=False)

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == {"c"}
    assert await cache.watermark() == pending - 1

    await put(cache, item_key("b"), b"b read before the write landed")
    await catch_up(cache, _typed(feed))
    assert cached(cache, item_key("b")) is None
    assert await cache.watermark() == pending - 1

    feed.head = pending  # the write finished
    await put(cache, item_key("b"), b"b read before the write landed")
    await catch_up(cache, _typed(feed))
    assert cached(cache, item_key("b")) is None
    assert await cache.watermark() == pending

    await put(cache, item_key("b"), b"b after the write")
    await catch_up(cache, _typed(feed))
    assert cached(cache, item_key("b")) == b"b after the write"


async def test_the_watermark_never_passes_the_last_change_read() -> None:
    """A change recorded between the feed's two reads can make head exceed the last change
    in the batch: the watermark stops at what was applied, so that change is read next
    time instead of skipped."""
    cache = await relayed_cache()
    feed = FakeFeed()
    read = feed.record("a")
    feed.head = read + 1  # seq 2 settled, but the batch was read before it was recorded

    await catch_up(cache, _typed(feed))

    assert await cache.watermark() == read
    feed.record("b")
    await catch_up(cache, _typed(feed))
    assert present(cache, ["a", "b", "c"]) == {"c"}
    assert await cache.watermark() == read + 1


async def test_a_change_of_everything_retires_every_entry() -> None:
    """event_id None (bulk insert, delete all): any event may have changed."""
    cache = await relayed_cache()
    feed = FakeFeed()
    feed.record(EVERYTHING)

    await catch_up(cache, _typed(feed))

    assert present(cache, ["a", "b", "c"]) == set()
    assert cached(cache, PAGE) is None
    assert await cache.watermark() == 1
