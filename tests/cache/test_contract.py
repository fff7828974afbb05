"""Cache contract: every backend of the Cache Protocol honours the same lease semantics.

Each test runs against MemoryCache (with a fake clock), RedisCache on a private
redis-server (see the ``redis_server`` fixture), and RedisCache on a private three-master
Redis Cluster (``redis_cluster``: one per module, emptied for each test), the client given
the URL of a node that does NOT serve the namespace's slot, so every call is routed. Time is
the only thing the backends are driven differently for, through the small harness classes
below: MemoryCache's clock is advanced, Redis's own expiry is observed through PTTL polls
(bounded, never a bare sleep).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import pytest

from eventapi.cache.base import Cache, CacheKey, Fill, Lookup, LookupState, WriteLease
from eventapi.cache.memory import MemoryCache
from eventapi.cache.redis import RedisCache, RedisLink, Script, connect, hash_tag
from eventapi.changes import Change
from tests.support.poll import eventually
from tests.support.redis_cluster import RedisClusterServers, keys_on
from tests.support.redis_server import RedisServer
from tests.support.timing import FakeClock

ITEM = CacheKey("item:x")
OTHER_ITEM = CacheKey("item:y")
LIST = CacheKey("list:0123abcd", is_list=True)
LONG_LEASE_MS = 60_000
LONG_TTL_MS = 60_000
POLL_DEADLINE = 5.0  # seconds; a generous bound for Redis's own expiry, not a timing claim

PAYLOADS = [
    pytest.param(b'{"id": "x"}', id="json"),
    pytest.param(b"\n", id="newline"),
    pytest.param(b"\x00", id="nul"),
    pytest.param(b"a\nb\x00c\r\n\xff\xfe", id="mixed"),
    pytest.param(bytes(range(256)) * 4, id="all-bytes"),
    pytest.param(b"", id="empty"),
]


class Harness(Protocol):
    cache: Cache

    async def let_lease_lapse(self, key: CacheKey, lookup: Lookup, lease_ms: int) -> None:
        """Return once the lease on ``key`` granted in ``lookup`` (for ``lease_ms``) expired."""
        ...

    async def check_value_expiry(self, key: CacheKey, resolved: str, ttl_ms: int) -> None:
        """Assert that the value filled at ``resolved`` with ``ttl_ms`` expires in time."""
        ...


class MemoryHarness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.cache: Cache = MemoryCache(clock=self.clock)

    async def let_lease_lapse(self, key: CacheKey, lookup: Lookup, lease_ms: int) -> None:
        self.clock.advance(lease_ms / 1000 * 0.98)
        still_held = await self.cache.lease(key, lease_ms)
        assert still_held.state is LookupState.BUSY, "lease expired before lease_ms"
        self.clock.advance(lease_ms / 1000 * 0.04)

    async def check_value_expiry(self, key: CacheKey, resolved: str, ttl_ms: int) -> None:
        self.clock.advance(ttl_ms / 1000 * 0.98)
        before = await self.cache.lease(key, LONG_LEASE_MS)
        assert before.state is LookupState.HIT, "value expired before its TTL"
        self.clock.advance(ttl_ms / 1000 * 0.04)
        after = await self.cache.lease(key, LONG_LEASE_MS)
        assert after.state is LookupState.LEASED, "value outlived its TTL"


class RedisHarness:
    def __init__(self, cache: RedisCache, server_for: Callable[[str], RedisServer]) -> None:
        self.server_for = server_for  # the redis-server holding a key
        self.cache: Cache = cache

    @classmethod
    def single(cls, server: RedisServer) -> RedisHarness:
        cache = RedisCache(connect(server.url, timeout=1.0), namespace=f"test-{uuid.uuid4().hex}")
        return cls(cache, lambda key: server)

    @classmethod
    def cluster(cls, servers: RedisClusterServers) -> RedisHarness:
        namespace = f"test-{uuid.uuid4().hex}"
        # Told nothing but the URL of one node, which does not even hold the namespace.
        node = servers.other_node("{" + namespace + "}")
        cache = RedisCache(RedisLink(node.url, timeout=1.0), namespace=namespace)
        return cls(cache, servers.node_for)

    def pttl(self, key: str) -> int:
        reply = self.server_for(key).command("PTTL", key)
        assert reply.startswith(b":"), reply
        return int(reply[1:].strip())

    async def let_lease_lapse(self, key: CacheKey, lookup: Lookup, lease_ms: int) -> None:
        lease_key = lookup.resolved + ":lease"
        first = self.pttl(lease_key)
        assert first == -2 or 0 <= first <= lease_ms, f"lease PTTL {first} exceeds {lease_ms}"
        await eventually(  # -2: the key no longer exists
            lambda: self.pttl(lease_key) == -2,
            "lease key expired",
            within=POLL_DEADLINE,
            step=0.005,
        )

    async def check_value_expiry(self, key: CacheKey, resolved: str, ttl_ms: int) -> None:
        remaining = self.pttl(resolved)
        assert 0 < remaining <= ttl_ms
        assert remaining > ttl_ms - POLL_DEADLINE * 1000


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    made: Harness
    if request.param == "memory":
        made = MemoryHarness()
    elif request.param == "redis":
        made = RedisHarness.single(request.getfixturevalue("redis_server"))
    else:
        made = RedisHarness.cluster(request.getfixturevalue("redis_cluster"))
    try:
        yield made
    finally:
        await made.cache.close()


async def leased(cache: Cache, key: CacheKey, lease_ms: int = LONG_LEASE_MS) -> Lookup:
    lookup = await cache.lease(key, lease_ms)
    assert lookup.state is LookupState.LEASED
    assert lookup.token is not None
    return lookup


async def put(cache: Cache, key: CacheKey, value: bytes, ttl_ms: int = LONG_TTL_MS) -> str:
    lookup = await leased(cache, key)
    assert lookup.token is not None
    assert await cache.fill(lookup.resolved, lookup.token, value, ttl_ms) is True
    return lookup.resolved


async def state_of(cache: Cache, key: CacheKey) -> LookupState:
    return (await cache.lease(key, LONG_LEASE_MS)).state


# --- lease / fill ---------------------------------------------------------------------------


async def test_lease_on_empty_key_grants_a_lease_with_a_token(harness: Harness) -> None:
    lookup = await harness.cache.lease(ITEM, LONG_LEASE_MS)

    assert lookup.state is LookupState.LEASED
    assert isinstance(lookup.token, str)
    assert lookup.token
    assert lookup.value is None
    assert lookup.resolved.endswith("item:x")


async def test_second_lease_while_the_first_is_held_is_busy(harness: Harness) -> None:
    first = await leased(harness.cache, ITEM)

    second = await harness.cache.lease(ITEM, LONG_LEASE_MS)

    assert second.state is LookupState.BUSY
    assert second.token is None
    assert second.value is None
    assert second.resolved == first.resolved


async def test_leases_of_different_keys_are_independent(harness: Harness) -> None:
    first = await leased(harness.cache, ITEM)
    second = await leased(harness.cache, OTHER_ITEM)

    assert first.resolved != second.resolved
    assert first.token != second.token


@pytest.mark.parametrize("value", PAYLOADS)
async def test_fill_with_the_lease_token_stores_the_exact_bytes(
    harness: Harness, value: bytes
) -> None:
    lookup = await leased(harness.cache, ITEM)
    assert lookup.token is not None

    assert await harness.cache.fill(lookup.resolved, lookup.token, value, LONG_TTL_MS) is True

    for _ in range(2):  # a hit is repeatable: it neither consumes the value nor leases
        hit = await harness.cache.lease(ITEM, LONG_LEASE_MS)
        assert hit.state is LookupState.HIT
        assert hit.value == value
        assert type(hit.value) is bytes
        assert hit.token is None
        assert hit.resolved == lookup.resolved


async def test_fill_with_a_wrong_token_is_refused_and_stores_nothing(harness: Harness) -> None:
    lookup = await leased(harness.cache, ITEM)
    assert lookup.token is not None

    assert await harness.cache.fill(lookup.resolved, "not-the-token", b"bad", LONG_TTL_MS) is False

    # Nothing stored, and the rightful holder's lease is untouched.
    assert await state_of(harness.cache, ITEM) is LookupState.BUSY
    assert await harness.cache.fill(lookup.resolved, lookup.token, b"good", LONG_TTL_MS) is True
    hit = await harness.cache.lease(ITEM, LONG_LEASE_MS)
    assert hit.value == b"good"


async def test_a_token_is_good_for_one_fill_only(harness: Harness) -> None:
    lookup = await leased(harness.cache, ITEM)
    assert lookup.token is not None
    assert await harness.cache.fill(lookup.resolved, lookup.token, b"first", LONG_TTL_MS) is True

    assert await harness.cache.fill(lookup.resolved, lookup.token, b"again", LONG_TTL_MS) is False

    hit = await harness.cache.lease(ITEM, LONG_LEASE_MS)
    assert hit.state is LookupState.HIT
    assert hit.value == b"first"


async def test_fill_without_any_lease_is_refused(harness: Harness) -> None:
    lookup = await leased(harness.cache, ITEM)
    assert lookup.token is not None

    # The token of item:x does not open item:y (which was never leased).
    other = lookup.resolved.replace("item:x", "item:y")
    assert await harness.cache.fill(other, lookup.token, b"bad", LONG_TTL_MS) is False

    assert await state_of(harness.cache, OTHER_ITEM) is LookupState.LEASED


# --- invalidate / retire_all ----------------------------------------------------------------


async def test_invalidate_refuses_a_fill_with_a_pre_invalidation_token(harness: Harness) -> None:
    """The stale-set race: a reader loads the old value, a writer commits and invalidates,
    then the reader tries to fill. Its fill must be refused."""
    reader = await leased(harness.cache, ITEM)
    assert reader.token is not None

    await harness.cache.invalidate(["item:x"])

    assert await harness.cache.fill(reader.resolved, reader.token, b"old", LONG_TTL_MS) is False
    after = await harness.cache.lease(ITEM, LONG_LEASE_MS)
    assert after.state is LookupState.LEASED  # the lease was deleted too, not just the value
    assert after.token != reader.token


async def test_invalidate_deletes_the_value(harness: Harness) -> None:
    await put(harness.cache, ITEM, b"old")

    await harness.cache.invalidate(["item:x"])

    assert await state_of(harness.cache, ITEM) is LookupState.LEASED


async def test_invalidate_retires_list_pages_but_keeps_other_items(harness: Harness) -> None:
    list_resolved = await put(harness.cache, LIST, b"page")
    await put(harness.cache, OTHER_ITEM, b"other")

    await harness.cache.invalidate(["item:x"])

    after = await harness.cache.lease(LIST, LONG_LEASE_MS)
    assert after.state is LookupState.LEASED
    assert after.resolved != list_resolved  # a new generation, not a deleted key
    kept = await harness.cache.lease(OTHER_ITEM, LONG_LEASE_MS)
    assert kept.state is LookupState.HIT
    assert kept.value == b"other"


async def test_invalidate_with_no_items_still_retires_list_pages(harness: Harness) -> None:
    await put(harness.cache, LIST, b"page")

    await harness.cache.invalidate([])

    assert await state_of(harness.cache, LIST) is LookupState.LEASED


async def test_a_list_fill_leased_before_invalidate_is_never_visible(harness: Harness) -> None:
    reader = await leased(harness.cache, LIST)
    assert reader.token is not None

    await harness.cache.invalidate(["item:x"])
    # Whether the backend refuses it or parks it under the retired generation, nobody sees it.
    await harness.cache.fill(reader.resolved, reader.token, b"stale page", LONG_TTL_MS)

    assert await state_of(harness.cache, LIST) is LookupState.LEASED


# --- warm writes (base.py: lease_for_write, invalidate with fills) -------------------------


def fill_of(lease: WriteLease, value: bytes, name: str = "item:x") -> Fill:
    return Fill(name, lease, value, LONG_TTL_MS)


async def value_of(cache: Cache, key: CacheKey) -> bytes | None:
    lookup = await cache.lease(key, LONG_LEASE_MS)
    return lookup.value if lookup.state is LookupState.HIT else None


async def test_a_write_lease_nobody_overtook_leaves_the_written_value(harness: Harness) -> None:
    await put(harness.cache, ITEM, b"v1")
    await put(harness.cache, LIST, b"page")
    lease = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)
    # Until the write is settled, readers still get the old value (the write is not
    # acknowledged yet).
    assert await value_of(harness.cache, ITEM) == b"v1"

    await harness.cache.invalidate([], [], [fill_of(lease, b"v2")])

    assert await value_of(harness.cache, ITEM) == b"v2"
    assert await state_of(harness.cache, LIST) is LookupState.LEASED  # pages still retired


async def test_a_write_lease_revokes_a_reader_s_lease(harness: Harness) -> None:
    reader = await leased(harness.cache, ITEM)
    assert reader.token is not None

    lease = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)
    assert await state_of(harness.cache, ITEM) is LookupState.BUSY  # readers wait for it
    await harness.cache.invalidate([], [], [fill_of(lease, b"new")])

    assert await harness.cache.fill(reader.resolved, reader.token, b"old", LONG_TTL_MS) is False
    assert await value_of(harness.cache, ITEM) == b"new"


async def test_an_overtaken_write_leaves_a_hole_whoever_settles_first(harness: Harness) -> None:
    """Two writers: the second takes the lease after the first. Whichever order they
    settle in, the first one's value (which the second's may have overwritten in the
    store) is never left in the cache."""
    for first_settles in (True, False):
        await harness.cache.invalidate(["item:x"])
        first = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)
        second = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)
        settles = [fill_of(first, b"first"), fill_of(second, b"second")]
        for fill in settles if first_settles else settles[::-1]:
            await harness.cache.invalidate([], [], [fill])
        left = await value_of(harness.cache, ITEM)
        assert left != b"first"
        if first_settles:
            # The second's value came after everything: it may stay, or leave a hole.
            assert left in (b"second", None)
        else:
            assert left is None  # the first one, settling last, deletes what it cannot trust


async def test_any_invalidation_between_revokes_the_write_lease(harness: Harness) -> None:
    lease = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)
    await harness.cache.invalidate(["item:x"])  # another write (or the relay) meanwhile

    await harness.cache.invalidate([], [], [fill_of(lease, b"maybe overtaken")])

    assert await state_of(harness.cache, ITEM) is LookupState.LEASED


async def test_retire_all_revokes_the_write_lease(harness: Harness) -> None:
    lease = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)
    await harness.cache.retire_all()

    await harness.cache.invalidate([], [], [fill_of(lease, b"from before the retirement")])

    assert await state_of(harness.cache, ITEM) is LookupState.LEASED


async def test_an_expired_write_lease_fills_nothing(harness: Harness) -> None:
    lease = await harness.cache.lease_for_write(ITEM, 200)
    probe = Lookup(LookupState.LEASED, lease.resolved, token=lease.token)
    await harness.let_lease_lapse(ITEM, probe, 200)

    await harness.cache.invalidate([], [], [fill_of(lease, b"late")])

    assert await state_of(harness.cache, ITEM) is LookupState.LEASED


async def test_fills_and_deletions_in_one_invalidation(harness: Harness) -> None:
    await put(harness.cache, OTHER_ITEM, b"other")
    lease = await harness.cache.lease_for_write(ITEM, LONG_LEASE_MS)

    await harness.cache.invalidate(["item:y"], [], [fill_of(lease, b"x2")])

    assert await value_of(harness.cache, ITEM) == b"x2"
    assert await state_of(harness.cache, OTHER_ITEM) is LookupState.LEASED


async def test_retire_all_retires_items_and_lists(harness: Harness) -> None:
    await put(harness.cache, ITEM, b"item")
    await put(harness.cache, LIST, b"page")
    held = await leased(harness.cache, OTHER_ITEM)
    assert held.token is not None

    await harness.cache.retire_all()

    assert await state_of(harness.cache, ITEM) is LookupState.LEASED
    assert await state_of(harness.cache, LIST) is LookupState.LEASED
    # A fill leased before retire_all never becomes visible, and the key can be leased anew
    # (this lease is for the new resolved key; the earlier one is already LEASED above).
    await harness.cache.fill(held.resolved, held.token, b"stale", LONG_TTL_MS)
    after = await harness.cache.lease(OTHER_ITEM, LONG_LEASE_MS)
    assert after.state is LookupState.LEASED
    assert after.resolved != held.resolved


# --- expiry ---------------------------------------------------------------------------------


async def test_a_lease_expires_after_lease_ms(harness: Harness) -> None:
    first = await leased(harness.cache, ITEM, lease_ms=50)
    assert first.token is not None

    await harness.let_lease_lapse(ITEM, first, 50)

    second = await leased(harness.cache, ITEM)
    assert second.token != first.token
    assert second.token is not None
    # The lapsed holder can no longer fill; the new holder can.
    assert await harness.cache.fill(first.resolved, first.token, b"late", LONG_TTL_MS) is False
    assert await harness.cache.fill(second.resolved, second.token, b"new", LONG_TTL_MS) is True
    hit = await harness.cache.lease(ITEM, LONG_LEASE_MS)
    assert hit.value == b"new"


async def test_a_fill_with_an_expired_lease_is_refused(harness: Harness) -> None:
    """base.py: fill stores the value "only if that lease is still current"."""
    lookup = await leased(harness.cache, ITEM, lease_ms=50)
    assert lookup.token is not None

    await harness.let_lease_lapse(ITEM, lookup, 50)

    assert await harness.cache.fill(lookup.resolved, lookup.token, b"late", LONG_TTL_MS) is False
    assert await state_of(harness.cache, ITEM) is LookupState.LEASED


async def test_a_filled_value_expires_after_its_ttl(harness: Harness) -> None:
    resolved = await put(harness.cache, ITEM, b"value", ttl_ms=LONG_TTL_MS)

    await harness.check_value_expiry(ITEM, resolved, LONG_TTL_MS)


# --- backend-specific -----------------------------------------------------------------------


async def test_memory_cache_evicts_the_least_recently_used_entry() -> None:
    cache = MemoryCache(max_entries=2, clock=FakeClock())
    a, b, c = CacheKey("item:a"), CacheKey("item:b"), CacheKey("item:c")
    await put(cache, a, b"a")
    await put(cache, b, b"b")
    assert (await cache.lease(a, LONG_LEASE_MS)).state is LookupState.HIT  # a is now newest

    await put(cache, c, b"c")

    assert len(cache) == 2
    assert (await cache.lease(a, LONG_LEASE_MS)).value == b"a"
    assert (await cache.lease(c, LONG_LEASE_MS)).value == b"c"
    assert await state_of(cache, b) is LookupState.LEASED  # b was evicted
    await cache.close()


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_redis_namespaces_do_not_collide(kind: str, request: pytest.FixtureRequest) -> None:
    servers: list[RedisServer]
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        servers, url = [server], server.url
    else:
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        servers, url = cluster.nodes, cluster.url
    one = RedisCache(RedisLink(url, timeout=1.0), namespace="ns-one")
    two = RedisCache(RedisLink(url, timeout=1.0), namespace="ns-two")
    try:
        await put(one, ITEM, b"one")
        await put(one, LIST, b"one page")

        # Same names in the other namespace: no value, no lease held.
        mine = await leased(two, ITEM)
        assert mine.token is not None
        assert await two.fill(mine.resolved, mine.token, b"two", LONG_TTL_MS) is True
        await put(two, LIST, b"two page")

        await one.invalidate(["item:x"])
        await one.retire_all()

        assert (await two.lease(ITEM, LONG_LEASE_MS)).value == b"two"
        assert (await two.lease(LIST, LONG_LEASE_MS)).value == b"two page"
        assert await state_of(one, ITEM) is LookupState.LEASED

        keys = [key for server in servers for key in keys_on(server)]
        raw = b" ".join(keys)
        for name in (b"item:x", b"list:0123abcd", b"epoch", b"generation"):
            assert name in raw
        assert keys
        # Each namespace is its own hash tag: in a cluster, all its keys on one node.
        assert all(k.startswith((b"{ns-one}:", b"{ns-two}:")) for k in keys), keys
        for tag in (b"{ns-one}:", b"{ns-two}:"):
            holding = [s for s in servers if any(k.startswith(tag) for k in keys_on(s))]
            assert len(holding) == 1, (tag, [s.port for s in holding])
    finally:
        await one.close()
        await two.close()


def test_a_namespace_is_one_hash_tag_whatever_it_holds() -> None:
    assert hash_tag("eventapi:0123abcd") == "{eventapi:0123abcd}"
    # A '}' would end the tag early, an empty tag would hash the whole key: both escaped.
    assert hash_tag("a}b") == "{a%7Db}"
    assert hash_tag("a%7Db") == "{a%257Db}"
    assert hash_tag("") == "{%}"


# --- Redis: names made by the client, checked by the script ----------------------------------
# Two RedisCache on one namespace stand for two processes: each names keys with the epoch and
# generation it saw last, which the other may have moved on since.


@pytest.fixture(params=["redis", "redis-cluster"])
def shared_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    return cluster.url


@pytest.fixture
async def handles(shared_url: str) -> AsyncIterator[tuple[RedisCache, RedisCache]]:
    namespace = f"test-{uuid.uuid4().hex}"
    one = RedisCache(RedisLink(shared_url, timeout=1.0), namespace)
    two = RedisCache(RedisLink(shared_url, timeout=1.0), namespace)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_an_invalidation_named_with_an_old_epoch_deletes_the_current_value(
    handles: tuple[RedisCache, RedisCache],
) -> None:
    one, two = handles
    await put(one, ITEM, b"before")  # one has seen the epoch
    await two.retire_all()  # ... which two has moved on since
    await put(two, ITEM, b"filled since")

    await one.invalidate(["item:x"])

    assert await state_of(two, ITEM) is LookupState.LEASED


async def test_a_catch_up_named_with_an_old_epoch_deletes_the_current_value(
    handles: tuple[RedisCache, RedisCache],
) -> None:
    one, two = handles
    await one.reset(0)
    await two.retire_all()
    await put(two, ITEM, b"filled since")

    await one.catch_up([Change(1, "x")], through=1)

    assert await state_of(two, ITEM) is LookupState.LEASED
    assert await two.watermark() == 1


async def test_a_lease_named_with_an_old_epoch_or_generation_never_hits_a_retired_entry(
    handles: tuple[RedisCache, RedisCache],
) -> None:
    one, two = handles
    await put(one, ITEM, b"item")
    page = await put(one, LIST, b"page")

    await two.invalidate([])  # a new generation: the page is retired, the item is not
    assert (await one.lease(ITEM, LONG_LEASE_MS)).value == b"item"
    after = await one.lease(LIST, LONG_LEASE_MS)
    assert after.state is LookupState.LEASED
    assert after.resolved != page

    await two.retire_all()  # a new epoch: everything is retired
    assert await state_of(one, ITEM) is LookupState.LEASED


async def test_names_changed_under_every_attempt_mean_busy_or_everything_retired(
    handles: tuple[RedisCache, RedisCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write between the client's reading of the names and each of its attempts: a lease
    looks again later (BUSY, no token); an invalidation or a catch-up, on its third
    attempt, retires everything instead of naming the epoch, so it is never lost to the
    churn. Nothing is read or changed under old names."""
    one, two = handles
    await one.reset(0)
    await put(one, ITEM, b"old")
    run = one._link.run
    attempts = 0

    async def bumped_first(script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        nonlocal attempts
        attempts += 1
        await two.retire_all()
        return await run(script, keys, args)

    monkeypatch.setattr(one._link, "run", bumped_first)
    lookup = await one.lease(ITEM, LONG_LEASE_MS)
    assert (lookup.state, lookup.token, lookup.value) == (LookupState.BUSY, None, None)
    assert attempts == 2
    await one.invalidate(["item:x"], seqs=[1])
    assert attempts == 5
    await one.catch_up([Change(2, "x")], through=2)
    assert attempts == 8

    monkeypatch.undo()
    assert await one.watermark() == 2  # both delivered
    assert await state_of(one, ITEM) is LookupState.LEASED  # retired, by two
