"""GET /metrics through a Redis failure and recovery."""

from __future__ import annotations

import asyncio

import pytest

from tests.cache.faults.helpers import (
    ITEM_ROUTE,
    Samples,
    health,
    replace,
    scrape,
    value,
    wait_for_redis,
)
from tests.support.api import EVENTS, create
from tests.support.app import RunningApp
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

CACHE = "eventapi_cache_requests_total"
STORE = "eventapi_store_operations_total"
ERRORS = "eventapi_cache_errors_total"
BREAKER = "eventapi_cache_breaker_open"
LATENCY = "eventapi_request_duration_seconds"


def outcomes(samples: Samples, route: str) -> dict[str, float]:
    return {o: value(samples, CACHE, route=route, outcome=o) for o in ("hit", "miss", "bypass")}


async def test_metrics_follow_a_failure_and_the_recovery(
    harness: RunningApp, redis_server: RedisServer
) -> None:
    http = harness.http
    response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    for family in (CACHE, STORE, ERRORS, BREAKER, LATENCY):
        assert f"# TYPE {family.removesuffix('_total')}" in response.text

    event = await create(http, "measured")
    url = f"{EVENTS}/{event['id']}"
    for _ in range(2):
        assert (await http.get(url)).status_code == 200
        assert (await http.get(EVENTS)).status_code == 200
    await replace(http, event["id"], "measured again")
    healthy = await scrape(http)
    assert outcomes(healthy, "item") == {"hit": 1, "miss": 1, "bypass": 0}
    assert outcomes(healthy, "list") == {"hit": 1, "miss": 1, "bypass": 0}
    for operation, count in {"create": 1, "get": 1, "list": 1, "update": 1}.items():
        assert value(healthy, STORE, operation=operation) == count, operation
    assert value(healthy, BREAKER) == 0.0
    assert sum(v for (name, _), v in healthy.items() if name == ERRORS) == 0

    # The latency histogram: one observation per request, labelled by route template.
    item_200 = {"method": "GET", "route": ITEM_ROUTE, "status": "200"}
    assert value(healthy, f"{LATENCY}_count", **item_200) == 2
    assert value(healthy, f"{LATENCY}_bucket", **item_200, le="+Inf") == 2
    assert 0 < value(healthy, f"{LATENCY}_sum", **item_200) < 5
    assert value(healthy, f"{LATENCY}_count", method="POST", route=EVENTS, status="201") == 1
    assert value(healthy, f"{LATENCY}_count", method="PUT", route=ITEM_ROUTE, status="200") == 1

    redis_server.kill()
    for _ in range(3):
        assert (await http.get(url)).headers["x-cache"] == "BYPASS"
    down = await scrape(http)
    assert outcomes(down, "item") == {"hit": 1, "miss": 1, "bypass": 3}
    assert value(down, STORE, operation="get") == 4  # every bypass read the store
    assert value(down, ERRORS, operation="lease") >= 1
    assert value(down, BREAKER) == 1.0
    assert (await health(http))["status"] == "degraded"
    assert value(await scrape(http), BREAKER) == 1.0

    redis_server.restart()
    await wait_for_redis(http, "connected", step=harness.settings.cache_breaker_reset)
    assert value(await scrape(http), BREAKER) == 0.0
    miss = await http.get(url)
    hit = await http.get(url)
    assert [miss.headers["x-cache"], hit.headers["x-cache"]] == ["MISS", "HIT"]
    recovered = await scrape(http)
    assert outcomes(recovered, "item") == {"hit": 2, "miss": 2, "bypass": 3}
    assert value(recovered, STORE, operation="get") == 5
    assert value(recovered, BREAKER) == 0.0
    assert value(recovered, f"{LATENCY}_count", **item_200) == 2 + 3 + 2


async def test_breaker_gauge_recovers_while_idle(
    harness: RunningApp, redis_server: RedisServer
) -> None:
    """The breaker is documented to probe in the background every reset period. With
    Redis back and nobody reading, the gauge a monitoring system scrapes must drop to 0
    (scrapes only: /metrics does not touch the cache)."""
    http = harness.http
    event = await create(http, "idle")
    redis_server.kill()
    for _ in range(2):
        await http.get(f"{EVENTS}/{event['id']}")
    assert value(await scrape(http), BREAKER) == 1.0
    redis_server.restart()
    reset = harness.settings.cache_breaker_reset
    for _ in range(15):  # 15 reset periods: bounded readiness poll
        if value(await scrape(http), BREAKER) == 0.0:
            return
        await asyncio.sleep(reset)
    raise AssertionError(
        f"Redis is back, but the breaker gauge still reads 1 after {15 * reset:.1f}s "
        "without cache traffic: no probe runs unless a request hits the open breaker"
    )
