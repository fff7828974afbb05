"""The cache and the shared rate limits on a Redis Cluster, told nothing but the URL of one
node: detected as a cluster, used as one (every call routed to the node serving the
namespace's slot), and recovering from that node's restart like from a single Redis's.

One private three-master cluster serves the whole module (``redis_cluster``: every node up
and empty for each test). The contract suites (tests/cache/test_contract*.py), the stampede
and two-app tests here, and tests/cache/processes/test_sustained_load.py run on it too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import RedisClusterException

from eventapi.cache import factory
from eventapi.cache.base import CacheUnavailable, LookupState, item_key
from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.entry import Entry
from eventapi.cache.guard import GuardedCache
from eventapi.cache.redis import RedisCache, RedisLink, connect_cluster, hash_tag
from eventapi.metrics import Metrics
from eventapi.ratelimit.rates import Rate
from eventapi.ratelimit.shared import RedisTokens
from eventapi.settings import Settings
from tests.cache.faults.helpers import health, read_until_hit, replace, wait_for_redis
from tests.ratelimit.test_app import ADDRESS, OTHER_ADDRESS, two_apps_share_three_writes_an_hour
from tests.ratelimit.test_parts import grants_up_to_the_room_left
from tests.support.api import create, item
from tests.support.app import run_app
from tests.support.backends import open_backend
from tests.support.redis_cluster import RedisClusterServers, keys_on
from tests.support.redis_server import RedisServer, free_port
from tests.support.settings import app_settings
from tests.support.timing import FakeClock

ITEM = item_key("c" * 24)
LEASE_MS = 60_000


def cache_settings(tmp_path: Path, url: str, **fields: Any) -> Settings:
    return app_settings(
        tmp_path, cache_url=url, cache_namespace=f"cluster-{uuid.uuid4().hex[:8]}", **fields
    )


def tag_of(settings: Settings) -> str:
    assert settings.cache_namespace is not None
    return hash_tag(settings.cache_namespace)


@asynccontextmanager
async def opened(
    settings: Settings,
) -> AsyncIterator[tuple[GuardedCache[Entry], RedisCache[Entry]]]:
    async with factory.open_cache(settings, Metrics()) as cache:
        assert cache is not None
        assert isinstance(cache.inner, RedisCache)
        yield cache, cache.inner


async def round_trip(cache: GuardedCache[Entry]) -> None:
    """Lease, fill, hit, invalidate: the cache works."""
    lookup = await cache.lease(ITEM, LEASE_MS)
    assert lookup.state is LookupState.LEASED
    assert lookup.token is not None
    value = Entry.build(200, b'{"title": "value"}')
    assert await cache.fill(lookup.resolved, lookup.token, value, LEASE_MS)
    assert (await cache.lease(ITEM, LEASE_MS)).value == value
    await cache.invalidate([ITEM.name])
    assert (await cache.lease(ITEM, LEASE_MS)).state is LookupState.LEASED


# --- detection ------------------------------------------------------------------------------


async def test_a_url_naming_any_node_is_detected_and_used_as_the_cluster(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    for node in redis_cluster.nodes:
        settings = cache_settings(tmp_path, node.url)
        async with opened(settings) as (cache, inner):
            assert inner._link.cluster is True  # found out at start-up
            await round_trip(cache)
        tag = tag_of(settings).encode()
        owner = redis_cluster.node_for(tag.decode())
        on = {n.port for n in redis_cluster.nodes for k in keys_on(n) if k.startswith(tag)}
        assert on == {owner.port}, "the namespace's keys are all on the node of its slot"


async def test_a_single_redis_is_used_as_one(redis_server: RedisServer, tmp_path: Path) -> None:
    async with opened(cache_settings(tmp_path, redis_server.url)) as (cache, inner):
        assert inner._link.cluster is False
        await round_trip(cache)


@pytest.mark.system  # starts redis-server
async def test_a_redis_refusing_info_is_used_as_one(tmp_path: Path) -> None:
    """INFO refused (renamed away here; a proxy may refuse it): nothing says "cluster", and
    one Redis it is. The scripts declare every key, so whatever routes behind it can."""
    server = RedisServer(tmp_path, extra_args=["--rename-command", "INFO", ""]).start()
    try:
        async with opened(cache_settings(tmp_path, server.url)) as (cache, inner):
            assert inner._link.cluster is False
            await round_trip(cache)
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_first_calls_at_once_make_one_client(
    kind: str, request: pytest.FixtureRequest
) -> None:
    fixture = "redis_server" if kind == "redis" else "redis_cluster"
    server: RedisServer | RedisClusterServers = request.getfixturevalue(fixture)
    link = RedisLink(server.url, timeout=1.0)
    try:
        clients = await asyncio.gather(*(link.client() for _ in range(4)))
        assert all(client is clients[0] for client in clients)
        assert link.cluster is (kind == "redis-cluster")
    finally:
        await link.close()


async def test_a_node_silent_at_start_up_is_asked_again_on_first_use(
    redis_cluster: RedisClusterServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory, "DETECT_WITHIN", 0.05)
    node = redis_cluster.nodes[1]
    node.freeze()  # accepts the connection, never answers: start-up cannot tell
    try:
        async with opened(cache_settings(tmp_path, node.url, cache_timeout=1.0)) as (
            cache,
            inner,
        ):
            assert inner._link.cluster is None
            node.thaw()
            await round_trip(cache)
            assert inner._link.cluster is True
    finally:
        node.thaw()


# --- failures -------------------------------------------------------------------------------


async def test_no_cluster_node_answering_is_a_cache_failure() -> None:
    """The cluster client raises RedisClusterException (not a RedisError) when no node
    answers: the guard counts it as the cache failing (CacheUnavailable, breaker), not as
    a bug that would fail the request."""
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    inner = RedisCache(RedisLink.of(connect_cluster(nowhere, 0.5)), "nowhere")
    guard = GuardedCache(inner, 0.5, CircuitBreaker(reset_timeout=3.0))
    try:
        with pytest.raises(CacheUnavailable) as failed:
            await guard.lease(ITEM, LEASE_MS)
        assert isinstance(failed.value.__cause__, RedisClusterException)
        await guard.invalidate([ITEM.name])  # a write: trips the breaker, never raises
        assert guard.breaker.state is BreakerState.OPEN
    finally:
        await guard.close()


# --- a node restarted under the app ---------------------------------------------------------


async def test_the_node_of_the_namespace_killed_and_restarted_under_the_app(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    """Kill the node holding the cache: writes are accepted, reads bypass it; restart it
    (empty, and refusing commands until it has rejoined: CLUSTERDOWN): the probe reconnects,
    the relay starts the emptied cache afresh, and the cache serves the write."""
    settings = cache_settings(
        tmp_path, redis_cluster.url, cache_timeout=0.05, cache_breaker_reset=0.2
    )
    owner = redis_cluster.node_for(tag_of(settings))
    async with open_backend("sqlite", tmp_path) as store, run_app(settings, store) as app:
        http = app.http
        created = await create(http, "before")
        url = item(created["id"])
        await read_until_hit(http, url, step=0.2)

        owner.kill()
        written = await replace(http, created["id"], "while the node was down")
        # Open, or probing the dead node: the write waited out the fence (1 s), longer than
        # the breaker's reset (0.2 s), so a probe may be under way now. Either way, not
        # closed: reads bypass the cache.
        assert app.guard.breaker.state in (BreakerState.OPEN, BreakerState.HALF_OPEN)
        during = await http.get(url)
        assert (during.headers["x-cache"], during.json()) == ("BYPASS", written)

        owner.start()
        await wait_for_redis(http, "connected", step=0.2)
        assert (await health(http))["redis"] == "connected"
        responses = await read_until_hit(http, url, step=0.2)
        assert [r.json() for r in responses] == [written] * len(responses)
        after = await replace(http, created["id"], "after the restart")
        assert (await http.get(url)).json() == after


# --- the shared rate limits -----------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tokens(
    redis_cluster: RedisClusterServers, clock: FakeClock
) -> AsyncIterator[RedisTokens]:
    redis = RedisTokens(0.5, CircuitBreaker(reset_timeout=3.0, clock=clock))
    redis.attach(RedisLink(redis_cluster.other_node("k").url, 0.5, watch_restarts=False))
    try:
        yield redis
    finally:
        await redis.close()


async def test_rate_limit_buckets_on_the_cluster_grant_exactly_the_count(
    tokens: RedisTokens, redis_cluster: RedisClusterServers
) -> None:
    await grants_up_to_the_room_left(tokens)
    exact = [await tokens.take("other", Rate(7, 60), 1) for _ in range(8)]
    assert [g[0] for g in exact if g is not None] == [1] * 7 + [0]
    # Each bucket on the node of its own slot (no hash tag: they spread over the nodes).
    for key in ("k", "other"):
        ttl = int(redis_cluster.node_for(key).command("PTTL", key).split(b"\r\n")[0][1:])
        assert 0 < ttl <= 60_001


async def test_rate_limits_probe_a_restarted_node_and_share_again(
    tokens: RedisTokens, redis_cluster: RedisClusterServers, clock: FakeClock
) -> None:
    rate = Rate(5, 60)
    assert await tokens.take("k", rate, 1) == (1, 0.0)
    owner = redis_cluster.node_for("k")
    owner.kill()
    assert await tokens.take("k", rate, 1) is None
    assert await tokens.take("k", rate, 1) is None
    assert state(tokens) is BreakerState.OPEN
    owner.start()
    redis_cluster.wait_ok()  # the restarted node refuses commands until it has rejoined
    clock.advance(3.0)
    assert tokens.ready()  # this caller probes: reconnect, and ask again
    assert await tokens.take("k", rate, 1) == (1, 0.0)  # the node lost the bucket: full
    assert state(tokens) is BreakerState.CLOSED


def state(tokens: RedisTokens) -> BreakerState:
    return tokens.breaker.state  # a call, so mypy does not narrow it between assertions


async def test_two_apps_share_their_write_budget_through_the_cluster(
    tmp_path: Path, redis_cluster: RedisClusterServers
) -> None:
    await two_apps_share_three_writes_an_hour(tmp_path, redis_cluster.nodes[2].url)
    buckets = [k.decode() for k in redis_cluster.all_keys() if b":ratelimit:writes:3/3600:" in k]
    assert any(k.endswith(f"addr:{ADDRESS}") for k in buckets), buckets
    assert any(k.endswith(f"addr:{OTHER_ADDRESS}") for k in buckets), buckets
