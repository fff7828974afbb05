"""Rate limits piece by piece: parsing the settings, the bucket arithmetic on a fake clock,
the Redis batch lease (over a scripted stand-in, then over a real redis-server), who the
client is, and the 429 itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from eventapi.app import create_app
from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.factory import limits_link
from eventapi.cache.redis import RedisLink
from eventapi.http.caller import OPEN_SCOPE, Callers
from eventapi.http.limits import Check, refusal
from eventapi.metrics import Metrics
from eventapi.ratelimit.local import LocalBuckets
from eventapi.ratelimit.rates import PRODUCTION_WRITE_LIMIT, Policy, Rate, parse_rate, policies_for
from eventapi.ratelimit.shared import LEASE_SECONDS, RedisTokens, SharedBuckets, batch_size
from eventapi.settings import ApiKeys, Settings, key_digest
from tests.support.app import run_app
from tests.support.redis_server import RedisServer
from tests.support.settings import app_settings
from tests.support.timing import FakeClock

KEY = "limit-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
VAR = "EVENTAPI_RATE_LIMIT"


# Parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("100/second", 100, 1),
        ("60/minute", 60, 60),
        ("1000/hour", 1000, 3600),
        ("5000/day", 5000, 86400),
        ("10/s", 10, 1),
        ("10/sec", 10, 1),
        ("10/secs", 10, 1),
        ("10/seconds", 10, 1),
        ("10/m", 10, 60),
        ("10/min", 10, 60),
        ("10/minutes", 10, 60),
        ("10/h", 10, 3600),
        ("10/hr", 10, 3600),
        ("10/hrs", 10, 3600),
        ("10/d", 10, 86400),
        ("10/days", 10, 86400),
        (" 7 / MINUTE ", 7, 60),
        ("1/second", 1, 1),
        ("1000000/second", 1_000_000, 1),
    ],
)
def test_a_limit_is_a_count_per_unit(text: str, count: int, period: int) -> None:
    assert parse_rate(text, VAR) == Rate(count, period)


@pytest.mark.parametrize("text", ["", "   ", "off", "OFF", "none", " None "])
def test_empty_off_and_none_are_no_limit(text: str) -> None:
    assert parse_rate(text, VAR) is None


@pytest.mark.parametrize(
    "text",
    ["100", "second", "100/", "/second", "100/fortnight", "100/ms", "100 per second", "1.5/s",
     "-1/second", "100/second/2", "0", "yes", "\u0661\u0660/second"],
)  # fmt: skip
def test_anything_else_is_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{VAR}=") as caught:
        parse_rate(text, VAR)
    assert "<count>/<second|minute|hour|day>" in str(caught.value)


@pytest.mark.parametrize("text", ["0/second", "1000001/second"])
def test_the_count_is_bounded(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{VAR}=.*between 1 and 1000000.*off"):
        parse_rate(text, VAR)


def test_a_rate_reads_back_as_written() -> None:
    assert [str(Rate(5, p)) for p in (1, 60, 3600, 86400)] == [
        "5/second",
        "5/minute",
        "5/hour",
        "5/day",
    ]
    assert Rate(20, 60).interval == 3.0


def settings(**fields: object) -> Settings:
    return app_settings(**{"cache_url": None, **fields})


def test_development_has_no_limits_by_default() -> None:
    assert policies_for(settings()) == ()


def test_production_limits_writes_by_default() -> None:
    prod = settings(env="production", api_keys=ApiKeys.parse(KEY))
    assert policies_for(prod) == (Policy("writes", Rate(10, 1), writes_only=True),)
    assert parse_rate(PRODUCTION_WRITE_LIMIT, VAR) == Rate(10, 1)


@pytest.mark.parametrize("off", ["off", "none"])
def test_production_write_limit_can_be_switched_off(off: str) -> None:
    prod = settings(env="production", api_keys=ApiKeys.parse(KEY), write_rate_limit=off)
    assert policies_for(prod) == ()


def test_both_limits_writes_first() -> None:
    both = settings(rate_limit="100/second", write_rate_limit="20/minute")
    assert policies_for(both) == (
        Policy("writes", Rate(20, 60), writes_only=True),
        Policy("default", Rate(100, 1), writes_only=False),
    )
    assert [p.header for p in policies_for(both)] == [
        '"writes";q=20;w=60',
        '"default";q=100;w=1',
    ]


@pytest.mark.parametrize(
    ("field", "variable"),
    [("rate_limit", "EVENTAPI_RATE_LIMIT"), ("write_rate_limit", "EVENTAPI_WRITE_RATE_LIMIT")],
)
def test_a_bad_setting_names_its_variable(field: str, variable: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable}='lots'"):
        policies_for(settings(**{field: "lots"}))


# In-process buckets on a fake clock -------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_burst_of_count_then_one_per_interval(clock: FakeClock) -> None:
    buckets = LocalBuckets(Rate(3, 1), clock=clock)
    assert [buckets.take_now("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take_now("a") == pytest.approx(1 / 3)
    clock.advance(0.2)
    assert buckets.take_now("a") == pytest.approx(1 / 3 - 0.2)  # a refusal costs nothing
    clock.advance(1 / 3 - 0.2)
    assert buckets.take_now("a") == 0.0
    assert buckets.take_now("a") == pytest.approx(1 / 3)


def test_an_idle_bucket_fills_up_to_count_only(clock: FakeClock) -> None:
    buckets = LocalBuckets(Rate(5, 60), clock=clock)
    for _ in range(5):
        assert buckets.take_now("a") == 0.0
    clock.advance(3600)
    assert [buckets.take_now("a") for _ in range(6)][-2:] == [0.0, pytest.approx(12.0)]


@pytest.mark.parametrize("count", [1, 3, 7, 10, 60, 1000])
def test_exactly_count_at_once_whatever_the_rounding(clock: FakeClock, count: int) -> None:
    buckets = LocalBuckets(Rate(count, 60), clock=clock)
    taken = [buckets.take_now("a") for _ in range(count + 1)]
    assert taken[:count] == [0.0] * count
    assert taken[count] > 0


def test_clients_have_their_own_buckets(clock: FakeClock) -> None:
    buckets = LocalBuckets(Rate(1, 60), clock=clock)
    assert buckets.take_now("a") == 0.0
    assert buckets.take_now("b") == 0.0
    assert buckets.take_now("a") > 0
    assert buckets.take_now("b") > 0


async def test_take_is_take_now(clock: FakeClock) -> None:
    buckets = LocalBuckets(Rate(1, 60), clock=clock)
    assert await buckets.take("a") == 0.0
    assert await buckets.take("a") == pytest.approx(60.0)


def test_the_table_forgets_full_buckets_first(clock: FakeClock) -> None:
    buckets = LocalBuckets(Rate(1, 10), clock=clock, max_clients=8)
    for n in range(4):
        buckets.take_now(f"old{n}")
    clock.advance(10)  # their buckets are full again: the same as never seen
    for n in range(5):
        buckets.take_now(f"new{n}")
    assert len(buckets) == 5  # the sweep at 9 dropped the 4 full ones only
    for n in range(5):
        assert buckets.take_now(f"new{n}") > 0  # still limited


def test_a_flood_of_clients_keeps_the_table_bounded(clock: FakeClock) -> None:
    buckets = LocalBuckets(Rate(1, 10), clock=clock, max_clients=8)
    for n in range(100):
        assert buckets.take_now(f"c{n}") == 0.0
        assert len(buckets) <= 8
    assert buckets.take_now("c99") > 0  # the newest are kept


# The batch lease over a scripted Redis ----------------------------------------------------


def test_batch_size() -> None:
    assert batch_size(Rate(10, 1)) == 1
    assert batch_size(Rate(20, 60)) == 1
    assert batch_size(Rate(19, 1)) == 1
    assert batch_size(Rate(20, 1)) == 2
    assert batch_size(Rate(100, 1)) == 10
    assert batch_size(Rate(100_000, 1)) == 50
    assert batch_size(Rate(100_000, 3600)) == 2
    assert batch_size(Rate(1000, 3600)) == 1


class ScriptedRedis(RedisTokens):
    """RedisTokens whose take() answers from a list of replies (None: Redis failed), and
    records what it was asked. ``gate``, when set, holds each take() until the test
    releases one."""

    def __init__(self, replies: list[tuple[int, float] | None]) -> None:
        super().__init__(0.05, CircuitBreaker())
        self.replies = replies
        self.asked: list[tuple[str, int]] = []
        self.up = True
        self.gate: asyncio.Semaphore | None = None

    def ready(self) -> bool:
        return self.up

    async def take(self, key: str, rate: Rate, want: int) -> tuple[int, float] | None:
        self.asked.append((key, want))
        if self.gate is not None:
            await self.gate.acquire()
        return self.replies.pop(0)


async def spend(buckets: SharedBuckets, client: str = "c") -> float:
    wait = buckets.take_now(client)
    return await buckets.take(client) if wait is None else wait


async def test_a_batch_is_spent_without_asking_redis(clock: FakeClock) -> None:
    redis = ScriptedRedis([(10, 0.0), (3, 0.0)])
    buckets = SharedBuckets(Rate(100, 1), "p:", redis, clock=clock)
    assert buckets.batch == 10
    assert [await spend(buckets) for _ in range(13)] == [0.0] * 13
    assert redis.asked == [("p:c", 10), ("p:c", 10)]


async def test_a_refusal_is_remembered_until_the_next_token(clock: FakeClock) -> None:
    redis = ScriptedRedis([(0, 2.5), (1, 0.0)])
    buckets = SharedBuckets(Rate(20, 60), "p:", redis, clock=clock)
    assert await spend(buckets) == 2.5
    clock.advance(1.0)
    assert await spend(buckets) == pytest.approx(1.5)  # no Redis call
    assert len(redis.asked) == 1
    clock.advance(1.5)
    assert await spend(buckets) == 0.0
    assert len(redis.asked) == 2


async def test_held_tokens_expire(clock: FakeClock) -> None:
    redis = ScriptedRedis([(10, 0.0), (10, 0.0)])
    buckets = SharedBuckets(Rate(100, 1), "p:", redis, clock=clock)
    assert await spend(buckets) == 0.0
    clock.advance(LEASE_SECONDS)
    assert await spend(buckets) == 0.0
    assert len(redis.asked) == 2  # the 9 held were dropped, not spent late
    for _ in range(9):
        assert await spend(buckets) == 0.0
    assert len(redis.asked) == 2


async def turns() -> None:
    for _ in range(10):
        await asyncio.sleep(0)  # let every task run up to its next wait


async def test_requests_wait_for_the_batch_on_its_way(clock: FakeClock) -> None:
    redis = ScriptedRedis([(10, 0.0)])
    redis.gate = asyncio.Semaphore(0)
    buckets = SharedBuckets(Rate(100, 1), "p:", redis, clock=clock)
    tasks = [asyncio.create_task(spend(buckets)) for _ in range(3)]
    await turns()
    assert redis.asked == [("p:c", 10)]
    redis.gate.release()
    assert await asyncio.gather(*tasks) == [0.0, 0.0, 0.0]
    for _ in range(7):  # what is left of the batch, and no more
        assert buckets.take_now("c") == 0.0
    assert buckets.take_now("c") is None


async def test_a_request_waits_for_three_batches_at_most(clock: FakeClock) -> None:
    # Near the limit every batch comes back with one token: the waiters queue behind a
    # batch each, then take single tokens.
    redis = ScriptedRedis([(1, 0.0)] * 5)
    redis.gate = asyncio.Semaphore(0)
    buckets = SharedBuckets(Rate(100, 1), "p:", redis, clock=clock)
    tasks = [asyncio.create_task(spend(buckets)) for _ in range(5)]
    for _ in range(5):
        await turns()
        redis.gate.release()
    assert await asyncio.gather(*tasks) == [0.0] * 5
    assert [want for _, want in redis.asked] == [10, 10, 10, 1, 1]


async def test_a_refused_batch_refuses_its_waiters(clock: FakeClock) -> None:
    redis = ScriptedRedis([(0, 0.5)])
    redis.gate = asyncio.Semaphore(0)
    buckets = SharedBuckets(Rate(100, 1), "p:", redis, clock=clock)
    tasks = [asyncio.create_task(spend(buckets)) for _ in range(3)]
    await turns()
    redis.gate.release()
    assert await asyncio.gather(*tasks) == [0.5, 0.5, 0.5]
    assert len(redis.asked) == 1


async def test_a_waiter_that_took_the_probe_makes_it_at_once(clock: FakeClock) -> None:
    redis = ScriptedRedis([(1, 0.0), (1, 0.0)])
    redis.gate = asyncio.Semaphore(0)
    buckets = SharedBuckets(Rate(100, 1), "p:", redis, clock=clock)
    tasks = [asyncio.create_task(spend(buckets)) for _ in range(2)]
    await turns()
    # Meanwhile the breaker opened and its reset period passed: the waiter, waking, is
    # let through as the probe, and must not wait behind anyone.
    redis.breaker.state = BreakerState.HALF_OPEN
    redis.gate.release()
    await turns()
    redis.gate.release()
    assert await asyncio.gather(*tasks) == [0.0, 0.0]
    assert [want for _, want in redis.asked] == [10, 1]


async def test_redis_failing_falls_back_to_the_process(clock: FakeClock) -> None:
    redis = ScriptedRedis([None, None, None])
    buckets = SharedBuckets(Rate(2, 60), "p:", redis, clock=clock)
    assert [await spend(buckets) for _ in range(3)] == [0.0, 0.0, pytest.approx(30.0)]
    redis.up = False  # breaker open: no Redis call at all
    assert await spend(buckets) == pytest.approx(30.0)
    assert len(redis.asked) == 3


async def test_the_lease_table_is_bounded(clock: FakeClock) -> None:
    redis = ScriptedRedis([(0, 5.0)] * 20)
    buckets = SharedBuckets(Rate(1, 60), "p:", redis, clock=clock, max_clients=8)
    for n in range(20):
        assert await spend(buckets, f"c{n}") == 5.0
        assert len(buckets._leases) <= 8


# RedisTokens over a real redis-server -----------------------------------------------------


@pytest.fixture
async def tokens(redis_server: RedisServer, clock: FakeClock) -> AsyncIterator[RedisTokens]:
    redis = RedisTokens(0.5, CircuitBreaker(reset_timeout=3.0, clock=clock))
    redis.attach(RedisLink(redis_server.url, 0.5, watch_restarts=False))
    try:
        yield redis
    finally:
        await redis.close()


async def grants_up_to_the_room_left(tokens: RedisTokens) -> None:
    """Bucket "k" at 20 a minute, taken 8 at a time: 8, 8, then the 4 left, then none and
    how long until one is back (3 s). (Also run on a Redis Cluster: test_redis_cluster.py.)"""
    rate = Rate(20, 60)
    assert await tokens.take("k", rate, 8) == (8, 0.0)
    assert await tokens.take("k", rate, 8) == (8, 0.0)
    assert await tokens.take("k", rate, 8) == (4, 0.0)
    granted, wait = await tokens.take("k", rate, 8) or (-1, -1.0)
    assert granted == 0
    assert 2.9 < wait <= 3.0


async def test_the_script_grants_up_to_the_room_left(tokens: RedisTokens) -> None:
    await grants_up_to_the_room_left(tokens)
    assert await tokens.take("other", Rate(20, 60), 1) == (1, 0.0)


async def test_the_bucket_key_expires_once_full_again(
    tokens: RedisTokens, redis_server: RedisServer
) -> None:
    assert await tokens.take("k", Rate(5, 1), 2) == (2, 0.0)
    ttl = int(redis_server.command("PTTL", "k").split(b"\r\n")[0][1:])
    assert 0 < ttl <= 401


async def test_exactly_count_from_redis(tokens: RedisTokens) -> None:
    rate = Rate(7, 60)
    granted = [await tokens.take("k", rate, 1) for _ in range(8)]
    assert [g[0] for g in granted if g is not None] == [1] * 7 + [0]


def state(tokens: RedisTokens) -> BreakerState:
    return tokens.breaker.state  # a call, so mypy does not narrow it between assertions


async def test_redis_down_opens_the_breaker_and_a_probe_closes_it(
    tokens: RedisTokens, redis_server: RedisServer, clock: FakeClock
) -> None:
    rate = Rate(5, 60)
    assert await tokens.take("k", rate, 1) == (1, 0.0)
    redis_server.kill()
    assert tokens.ready()
    assert await tokens.take("k", rate, 1) is None
    assert await tokens.take("k", rate, 1) is None
    assert state(tokens) is BreakerState.OPEN
    assert not tokens.ready()
    redis_server.start()
    clock.advance(3.0)
    assert tokens.ready()  # this caller probes
    assert state(tokens) is BreakerState.HALF_OPEN
    assert not tokens.ready()  # everyone else keeps limiting in process meanwhile
    assert await tokens.take("k", rate, 1) == (1, 0.0)
    assert state(tokens) is BreakerState.CLOSED


async def test_a_probe_cut_short_is_tried_again_next_period(
    tokens: RedisTokens, redis_server: RedisServer, clock: FakeClock
) -> None:
    tokens.breaker.trip()
    clock.advance(3.0)
    assert tokens.ready()
    redis_server.freeze()
    probe = asyncio.create_task(tokens.take("k", Rate(5, 60), 1))
    await turns()  # into the call, where the frozen server keeps it
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert state(tokens) is BreakerState.OPEN
    redis_server.thaw()
    clock.advance(3.0)
    assert tokens.ready()
    assert await tokens.take("k", Rate(5, 60), 1) == (1, 0.0)
    assert state(tokens) is BreakerState.CLOSED


async def test_a_frozen_redis_costs_one_budget(
    tokens: RedisTokens, redis_server: RedisServer
) -> None:
    tokens.budget = 0.05
    assert await tokens.take("k", Rate(5, 60), 1) == (1, 0.0)
    redis_server.freeze()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await tokens.take("k", Rate(5, 60), 1) is None
    assert loop.time() - started < 0.5


async def test_a_bug_is_reported_and_served(
    tokens: RedisTokens, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> list[int]:
        raise KeyError("bug")

    tokens._script = broken  # type: ignore[assignment]
    assert await tokens.take("k", Rate(5, 60), 1) is None
    assert "rate limit call to Redis failed" in caplog.text


async def test_closed_tokens_are_never_ready() -> None:
    redis = RedisTokens(0.05, CircuitBreaker())
    assert not redis.ready()
    assert await redis.take("k", Rate(1, 1), 1) is None
    await redis.close()


async def test_shared_buckets_over_real_redis(tokens: RedisTokens, clock: FakeClock) -> None:
    # Two processes' worth of buckets on one Redis: 20 per minute between them.
    one = SharedBuckets(Rate(20, 60), "p:", tokens, clock=clock)
    two = SharedBuckets(Rate(20, 60), "p:", tokens, clock=clock)
    waits = [await spend(one if n % 2 else two) for n in range(30)]
    assert waits.count(0.0) == 20


# Who the client is, and the 429 -----------------------------------------------------------


def scope(*headers: tuple[str, str], peer: tuple[str, int] | None = ("198.51.100.7", 5)) -> dict:  # type: ignore[type-arg]
    return {
        "type": "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": peer,
    }


DIGESTS = (key_digest(KEY.encode()), key_digest(OTHER_KEY.encode()))


def client_id(scope: dict, digests: tuple[bytes, ...]) -> str:  # type: ignore[type-arg]
    return Callers(digests).of(scope).client


def test_the_client_is_a_configured_key_else_the_address() -> None:
    by_key = "key:" + key_digest(KEY.encode())[:16].hex()
    assert client_id(scope(("X-API-Key", KEY)), DIGESTS) == by_key
    assert client_id(scope(("Authorization", f"Bearer {KEY}")), DIGESTS) == by_key
    assert client_id(scope(("Authorization", f"bearer  {KEY} ")), DIGESTS) == by_key
    assert client_id(scope(("X-API-Key", "made-up-key-00000000000")), DIGESTS) == (
        "addr:198.51.100.7"
    )
    assert client_id(scope(("Authorization", f"Basic {KEY}")), DIGESTS) == "addr:198.51.100.7"
    assert client_id(scope(("X-API-Key", KEY)), ()) == "addr:198.51.100.7"
    assert client_id(scope(("X-API-Key", "nope"), ("X-API-Key", OTHER_KEY)), DIGESTS) == (
        "key:" + key_digest(OTHER_KEY.encode())[:16].hex()
    )
    assert client_id(scope(peer=None), DIGESTS) == "addr:unknown"
    assert KEY not in client_id(scope(("X-API-Key", KEY)), DIGESTS)


def test_the_caller_is_worked_out_once_per_request() -> None:
    request = scope(("X-API-Key", KEY))
    callers = Callers(DIGESTS)
    first = callers.of(request)
    assert first.idempotency_scope == key_digest(KEY.encode()).hex()
    assert Callers(()).of(request) is first  # kept in the request's scope
    assert callers.of(scope()).idempotency_scope == OPEN_SCOPE
    assert callers.of(scope(("X-API-Key", "made-up"))).presented


def test_the_refusal() -> None:
    writes = Policy("writes", Rate(20, 60), writes_only=True)
    everything = Policy("default", Rate(100, 1), writes_only=False)
    checks = (
        Check(writes, LocalBuckets(writes.rate)),
        Check(everything, LocalBuckets(everything.rate)),
    )
    response = refusal("/api/events", writes, checks, 2.2)
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "3"
    assert response.headers["ratelimit"] == '"writes";r=0;t=3'
    assert response.headers["ratelimit-policy"] == '"writes";q=20;w=60, "default";q=100;w=1'
    body = json.loads(bytes(response.body))
    assert body == {
        "type": "https://eventapi.dev/problems/rate-limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too many writes: the limit is 20/minute per client. Retry after 3 s.",
        "instance": "/api/events",
        "violated-policies": ["writes"],
    }
    short = refusal("/x", everything, checks[1:], 0.001)
    assert short.headers["retry-after"] == "1"  # never 0
    assert json.loads(bytes(short.body))["detail"].startswith("Too many requests:")


def test_the_redis_the_limits_follow() -> None:
    class Cache:
        backend = "redis"

    def url(settings: Settings, cache: object) -> str | None:
        link = limits_link(settings, cache)  # type: ignore[arg-type]
        return None if link is None else link.url

    assert url(settings(cache_url="redis://h:1/0"), None) == "redis://h:1/0"
    assert url(settings(cache_url="rediss://h:1/0"), None) == "rediss://h:1/0"
    assert url(settings(cache_url="memory://"), None) is None
    assert url(settings(cache_url="none"), None) is None
    assert url(settings(), None) is None  # auto-detection found no Redis
    assert url(settings(), Cache()) == "redis://localhost:6379/0"


async def test_without_a_redis_cache_the_limits_stay_in_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # EVENTAPI_CACHE_URL unset, and the cache opened is none: no Redis was found.
    @asynccontextmanager
    async def no_cache(settings: Settings, metrics: Metrics) -> AsyncIterator[None]:
        yield None

    caplog.set_level("INFO", logger="eventapi")
    limited = Settings(database_url=f"sqlite:///{tmp_path}/app.db", rate_limit="1/hour")
    app = create_app(limited, cache=no_cache)
    async with run_app(app=app) as running:
        assert (await running.http.get("/metrics")).status_code == 200
        assert (await running.http.get("/metrics")).status_code == 429
    assert "rate limits per client: default 1/hour" in caplog.text
    assert "no Redis, so each process limits on its own" in caplog.text
