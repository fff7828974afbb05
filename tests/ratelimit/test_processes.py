"""The rate limiter across two real `eventapi serve` processes sharing one Redis.

Both processes see the same client (127.0.0.1, no key), so they draw on one bucket. The
bound ratelimit/shared.py documents, for P processes, a limit of ``count`` per ``period``
and a batch of ``batch`` tokens, over an interval of t seconds:

    accepted <= count + (count / period) * t + P * (batch - 1)

is checked with t measured around the whole hammering (an upper bound of the interval the
servers saw). Independent per-process limits would accept about twice as much. Each
scenario sends a fixed number of requests; nothing waits on a timer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from eventapi.ratelimit.rates import Rate
from eventapi.ratelimit.shared import batch_size
from tests.support.api import EVENTS, event
from tests.support.cluster import Api, clients, metric, scrape
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

ERRORS = "eventapi_rate_limit_errors_total"
# The limiter's Redis calls get a roomy budget here: these scenarios are about sharing, and
# a call that ran out of time would (as documented) let a process limit on its own.
SETTINGS = {"cache_timeout": 0.5, "cache_relay_interval": 60}

KEY = "multi-process-key-0123456789"

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def hammer(api: Api, count: int, concurrency: int, send: Send) -> list[httpx.Response]:
    """``count`` requests through ``api``, ``concurrency`` at a time."""
    numbers = iter(range(count))
    responses: list[httpx.Response] = []

    async def worker() -> None:
        for n in numbers:
            responses.append(await send(api.http, n))

    async with asyncio.TaskGroup() as tasks:
        for _ in range(concurrency):
            tasks.create_task(worker())
    return responses


async def post(http: httpx.AsyncClient, n: int) -> httpx.Response:
    return await http.post(EVENTS, json=event(f"Limited {n}"))


async def read_metrics(http: httpx.AsyncClient, n: int) -> httpx.Response:
    # A read that touches neither the store nor the cache: the only Redis calls it makes
    # are the limiter's.
    return await http.get("/metrics")


async def keyed_read(http: httpx.AsyncClient, n: int) -> httpx.Response:
    return await http.get("/metrics", headers={"X-API-Key": KEY})


def script_calls(redis: RedisServer) -> int:
    """Lua script runs Redis has served so far (EVAL and EVALSHA)."""
    stats = redis.command("INFO", "commandstats").decode()
    calls = 0
    for line in stats.splitlines():
        name, _, rest = line.partition(":")
        if name in {"cmdstat_eval", "cmdstat_evalsha"}:
            calls += int(rest.split(",")[0].removeprefix("calls="))
    return calls


def bound(rate: Rate, seconds: float, processes: int) -> int:
    return (
        rate.count
        + math.floor(rate.count / rate.period * seconds)
        + processes * (batch_size(rate) - 1)
    )


async def test_a_write_limit_holds_across_two_processes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    rate = Rate(20, 60)  # batch 1: exact across processes
    env = server_env(
        tmp_path / "app.db", redis_server.url, write_rate_limit="20/minute", **SETTINGS
    )
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            started = time.monotonic()
            results = await asyncio.gather(*(hammer(api, 40, 8, post) for api in apis))
            elapsed = time.monotonic() - started
            errors = [metric(await scrape(api), ERRORS) for api in apis]

    statuses = [[r.status_code for r in responses] for responses in results]
    accepted = [s.count(201) for s in statuses]
    summary = f"accepted {accepted} of 2 x 40 in {elapsed:.2f}s; Redis errors {errors}"
    print(summary)
    assert errors == [0, 0], summary
    assert all(set(s) <= {201, 429} for s in statuses), statuses
    assert rate.count <= sum(accepted) <= bound(rate, elapsed, 2), summary
    assert all(s.count(429) > 0 for s in statuses), summary  # both saw the shared bucket empty
    refused = next(r for responses in results for r in responses if r.status_code == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 3
    assert refused.headers["ratelimit-policy"] == '"writes";q=20;w=60'


async def test_a_batched_read_limit_stays_within_its_bound_across_two_processes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    rate = Rate(40, 1)  # batch 4: at most 2 x 3 over an exact limit
    env = server_env(
        tmp_path / "app.db", redis_server.url, rate_limit="40/second", api_keys=KEY, **SETTINGS
    )
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            started = time.monotonic()
            results = await asyncio.gather(*(hammer(api, 300, 8, keyed_read) for api in apis))
            elapsed = time.monotonic() - started
            # The hammering client used a key: the address still has its whole bucket.
            errors = [metric(await scrape(api), ERRORS) for api in apis]

    accepted = [sum(r.status_code == 200 for r in responses) for responses in results]
    summary = f"accepted {accepted} of 2 x 300 in {elapsed:.2f}s; Redis errors {errors}"
    print(summary)
    assert errors == [0, 0], summary
    assert rate.count <= sum(accepted) <= bound(rate, elapsed, 2), summary
    assert all(a < 300 for a in accepted), summary


async def test_under_the_limit_most_requests_make_no_redis_call(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = server_env(tmp_path / "app.db", redis_server.url, rate_limit="1000/second", **SETTINGS)
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            before = script_calls(redis_server)
            results = await asyncio.gather(*(hammer(api, 300, 8, read_metrics) for api in apis))
            calls = script_calls(redis_server) - before

    statuses = {r.status_code for responses in results for r in responses}
    print(f"600 requests, {calls} Redis script calls")
    assert statuses == {200}
    # A batch of 50 tokens a call (requests that find a batch on its way wait for it):
    # about 12 calls for 600 requests.
    assert calls <= 600 // 20, calls
