"""Rate limits through the real app (http/limits.py): the 429 and its headers, who counts as
one client, writes against every request, the production default and the off switch, what
is never limited, and Redis: shared between apps, and never in the way when it fails.

Limits here are per minute or per hour, so no token comes back during a test: counts, not
timing, decide every assertion (the production default of 10/second is the exception, and
is checked with a concurrent burst and a tolerance of one token)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from eventapi.app import create_app
from eventapi.http.gate import Gate
from eventapi.settings import ApiKeys, Settings
from tests.api.helpers import assert_problem
from tests.support.api import EVENTS, MISSING_ID, event, item
from tests.support.app import run_app
from tests.support.redis_server import RedisServer
from tests.support.settings import app_settings

KEY = "limit-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
ADDRESS = "203.0.113.1"
OTHER_ADDRESS = "203.0.113.2"
DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def limit_settings(tmp_path: Path, **fields: Any) -> Settings:
    return app_settings(tmp_path, **fields)


def limiting(app: FastAPI) -> bool:
    return any(
        getattr(m.cls, "__name__", "") == Gate.__name__ and m.kwargs["limits"] is not None
        for m in app.user_middleware
    )


def assert_limited(response: httpx.Response, policy: str, policies: str) -> int:
    """A 429 for ``policy``, with Retry-After and the RateLimit fields; Retry-After."""
    body = assert_problem(response, 429)
    assert body["type"] == "https://eventapi.dev/problems/rate-limited"
    assert body["violated-policies"] == [policy]
    assert body["instance"] == response.request.url.path
    retry = int(response.headers["retry-after"])
    assert retry >= 1
    assert response.headers["ratelimit"] == f'"{policy}";r=0;t={retry}'
    assert response.headers["ratelimit-policy"] == policies
    for key in (KEY, OTHER_KEY, ADDRESS):
        assert key not in response.text
    return retry


async def posts(http: httpx.AsyncClient, count: int, **headers: str) -> list[int]:
    return [
        (await http.post(EVENTS, json=event(f"E{n}"), headers=headers)).status_code
        for n in range(count)
    ]


# The 429 ---------------------------------------------------------------------------------


async def test_over_the_limit_is_429_with_retry_after_and_ratelimit_fields(
    tmp_path: Path, fast_path: bool
) -> None:
    async with (
        run_app(limit_settings(tmp_path, rate_limit="4/minute"), fast_path=fast_path) as app,
        app.client(ADDRESS) as http,
    ):
        created = await http.post(EVENTS, json=event())
        assert created.status_code == 201
        path = item(created.json()["id"])
        for _ in range(3):
            ok = await http.get(path)
            assert ok.status_code == 200
            assert "ratelimit" not in ok.headers  # only a refusal carries them
        refused = await http.get(path)
        retry = assert_limited(refused, "default", '"default";q=4;w=60')
        assert 13 <= retry <= 15  # one token every 15 s, the first due ~15 s after the burst
        # Whatever the request, the client is out of tokens: a write, a HEAD, a 404.
        assert_limited(await http.post(EVENTS, json=event()), "default", '"default";q=4;w=60')
        assert (await http.head(path)).status_code == 429
        assert (await http.get(item(MISSING_ID))).status_code == 429


async def test_a_refused_write_changes_nothing(tmp_path: Path) -> None:
    settings = limit_settings(tmp_path, write_rate_limit="1/hour")
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        assert await posts(http, 3) == [201, 429, 429]
        listed = await http.get(EVENTS)
        assert [e["title"] for e in listed.json()] == ["E0"]


# Who is one client -----------------------------------------------------------------------


async def test_each_address_has_its_own_budget(tmp_path: Path) -> None:
    async with (
        run_app(limit_settings(tmp_path, rate_limit="2/minute")) as app,
        app.client(ADDRESS) as one,
        app.client(OTHER_ADDRESS) as two,
    ):
        assert [(await one.get(EVENTS)).status_code for _ in range(3)] == [200, 200, 429]
        assert [(await two.get(EVENTS)).status_code for _ in range(3)] == [200, 200, 429]


async def test_each_key_has_its_own_budget_wherever_it_calls_from(tmp_path: Path) -> None:
    settings = limit_settings(
        tmp_path, write_rate_limit="2/hour", api_keys=ApiKeys.parse(f"{KEY},{OTHER_KEY}")
    )
    async with (
        run_app(settings) as app,
        app.client(ADDRESS) as one,
        app.client(OTHER_ADDRESS) as two,
    ):
        assert await posts(one, 1, **{"X-API-Key": KEY}) == [201]
        # The same key from another address, as a bearer token: the same budget.
        assert await posts(two, 2, Authorization=f"Bearer {KEY}") == [201, 429]
        # Another key from the same address: a budget of its own.
        assert await posts(one, 3, **{"X-API-Key": OTHER_KEY}) == [201, 201, 429]


async def test_a_made_up_key_counts_as_no_key(tmp_path: Path) -> None:
    # Reads are public, so the access check lets any key through on a read: the limiter
    # must not give each made-up key a bucket of its own.
    settings = limit_settings(tmp_path, rate_limit="2/hour", api_keys=ApiKeys.parse(KEY))
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        statuses = [
            (await http.get(EVENTS, headers={"X-API-Key": f"made-up-key-{n:020d}"})).status_code
            for n in range(3)
        ]
        assert statuses == [200, 200, 429]
        # The real key is a client of its own.
        assert (await http.get(EVENTS, headers={"X-API-Key": KEY})).status_code == 200


async def test_a_wrong_key_is_refused_before_it_costs_a_token(tmp_path: Path) -> None:
    settings = limit_settings(tmp_path, write_rate_limit="1/hour", api_keys=ApiKeys.parse(KEY))
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        for _ in range(3):
            response = await http.post(EVENTS, json=event(), headers={"X-API-Key": "wrong" * 5})
            assert response.status_code == 401
        assert await posts(http, 2, **{"X-API-Key": KEY}) == [201, 429]


# Writes against every request ------------------------------------------------------------


async def test_a_write_limit_leaves_reads_alone(tmp_path: Path) -> None:
    async with (
        run_app(limit_settings(tmp_path, write_rate_limit="2/hour")) as app,
        app.client(ADDRESS) as http,
    ):
        assert await posts(http, 2) == [201, 201]
        assert_limited(await http.post(EVENTS, json=event()), "writes", '"writes";q=2;w=3600')
        for _ in range(10):
            assert (await http.get(EVENTS)).status_code == 200
        assert (await http.delete(item(MISSING_ID))).status_code == 429  # any write method


async def test_every_request_counts_and_a_write_must_pass_both(tmp_path: Path) -> None:
    settings = limit_settings(tmp_path, rate_limit="3/hour", write_rate_limit="1/hour")
    both = '"writes";q=1;w=3600, "default";q=3;w=3600'
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        assert await posts(http, 1) == [201]
        # Refused by the write limit: no token of the other is spent on it.
        assert_limited(await http.post(EVENTS, json=event()), "writes", both)
        assert (await http.get(EVENTS)).status_code == 200
        assert (await http.get(EVENTS)).status_code == 200
        assert_limited(await http.get(EVENTS), "default", '"default";q=3;w=3600')


async def test_health_and_the_documentation_are_never_limited(tmp_path: Path) -> None:
    settings = limit_settings(tmp_path, rate_limit="1/hour", write_rate_limit="1/hour")
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        for _ in range(3):
            for path in ("/health", *DOCS):
                assert (await http.get(path)).status_code == 200, path
        # /metrics is a read like any other.
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/metrics")).status_code == 429


async def test_refusals_are_counted_in_the_metrics(tmp_path: Path) -> None:
    async with (
        run_app(limit_settings(tmp_path, write_rate_limit="1/hour")) as app,
        app.client(ADDRESS) as http,
    ):
        assert await posts(http, 3) == [201, 429, 429]
        text = (await http.get("/metrics")).text
        assert 'eventapi_rate_limited_total{policy="writes"} 2.0' in text
        assert "eventapi_rate_limit_errors_total 0.0" in text


async def test_the_openapi_document_lists_the_429(tmp_path: Path) -> None:
    async with (
        run_app(limit_settings(tmp_path, write_rate_limit="20/minute")) as app,
        app.client(ADDRESS) as http,
    ):
        paths = (await http.get("/openapi.json")).json()["paths"]
        created = paths["/api/events"]["post"]["responses"]["429"]
        assert set(created["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
        assert created["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
        assert "writes: 20/minute" in created["description"]
        # A list page may be 429 (too many uncached list queries of one client:
        # events/admission.py), but not for a rate limit: reads have none here.
        listed = paths["/api/events"]["get"]["responses"]["429"]
        assert "RateLimit" not in listed.get("headers", {})
        assert "429" not in paths["/health"]["get"]["responses"]
    async with (
        run_app(limit_settings(tmp_path, rate_limit="5/second")) as app,
        app.client(ADDRESS) as http,
    ):
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert "429" in paths["/api/events"]["get"]["responses"]
        assert "429" in paths["/metrics"]["get"]["responses"]
        assert "429" not in paths["/health"]["get"]["responses"]


# Defaults, the off switch, bad settings --------------------------------------------------


def test_development_installs_nothing_by_default(tmp_path: Path) -> None:
    assert not limiting(create_app(limit_settings(tmp_path)))
    assert not limiting(create_app(limit_settings(tmp_path, rate_limit="off")))
    assert limiting(create_app(limit_settings(tmp_path, rate_limit="1/second")))


async def burst(http: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    """``count`` writes at once: the limiter sees them all within a few milliseconds."""
    return list(
        await asyncio.gather(
            *(
                http.post(EVENTS, json=event(f"B{n}"), headers={"X-API-Key": KEY})
                for n in range(count)
            )
        )
    )


async def test_production_limits_writes_to_10_a_second_by_default(tmp_path: Path) -> None:
    settings = limit_settings(tmp_path, env="production", api_keys=ApiKeys.parse(KEY))
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        started_at = time.monotonic()
        responses = await burst(http, 20)
        elapsed = time.monotonic() - started_at
        accepted = sum(r.status_code == 201 for r in responses)
        refused = [r for r in responses if r.status_code == 429]
        assert accepted + len(refused) == 20
        # 10 at once, plus one more per 100 ms the burst took to pass the limiter.
        assert 10 <= accepted <= 10 + int(elapsed * 10) + 1, elapsed
        assert_limited(refused[0], "writes", '"writes";q=10;w=1')
        for _ in range(20):
            assert (await http.get(EVENTS)).status_code == 200  # reads are not limited


async def test_production_write_limit_can_be_switched_off(tmp_path: Path) -> None:
    settings = limit_settings(
        tmp_path, env="production", api_keys=ApiKeys.parse(KEY), write_rate_limit="off"
    )
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        assert not limiting(app.app)
        assert {r.status_code for r in await burst(http, 20)} == {201}


@pytest.mark.parametrize(
    ("field", "variable"),
    [("rate_limit", "EVENTAPI_RATE_LIMIT"), ("write_rate_limit", "EVENTAPI_WRITE_RATE_LIMIT")],
)
def test_a_bad_limit_stops_the_app_naming_the_variable(
    tmp_path: Path, field: str, variable: str
) -> None:
    with pytest.raises(ValueError, match=f"^{variable}='100/fortnight' is not a rate limit"):
        create_app(limit_settings(tmp_path, **{field: "100/fortnight"}))


# Redis ------------------------------------------------------------------------------------


async def two_apps_share_three_writes_an_hour(tmp_path: Path, cache_url: str) -> None:
    """Two apps in one process stand for two server processes (test_processes.py runs real
    ones): 3 writes an hour between them, for one client (ADDRESS); another client
    (OTHER_ADDRESS) still has its whole budget."""
    # A budget no busy machine misses: past it each app would limit on its own (a Redis
    # too slow is a Redis down), which is another test's subject.
    settings = limit_settings(
        tmp_path, cache_url=cache_url, write_rate_limit="3/hour", cache_timeout=1.0
    )
    async with (
        run_app(settings) as one,
        run_app(settings) as two,
        one.client(ADDRESS) as first,
        two.client(ADDRESS) as second,
        two.client(OTHER_ADDRESS) as other,
    ):
        statuses = [*await posts(first, 2), *await posts(second, 2), *await posts(first, 1)]
        assert statuses == [201, 201, 201, 429, 429]
        assert await posts(other, 4) == [201, 201, 201, 429]


async def test_two_apps_share_their_budget_through_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    await two_apps_share_three_writes_an_hour(tmp_path, redis_server.url)
    keys = redis_server.command("KEYS", "*:ratelimit:writes:3/3600:*").decode()
    assert f"addr:{ADDRESS}" in keys
    assert f"addr:{OTHER_ADDRESS}" in keys


async def test_redis_down_never_blocks_a_request(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = limit_settings(tmp_path, cache_url=redis_server.url, rate_limit="5/hour")
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        assert [(await http.get(EVENTS)).status_code for _ in range(2)] == [200, 200]
        redis_server.kill()
        # Each process limits on its own now, from a full bucket: served, then limited.
        statuses = []
        for _ in range(7):
            started_at = time.monotonic()
            statuses.append((await http.get(EVENTS)).status_code)
            assert time.monotonic() - started_at < 1.0
        assert statuses == [200] * 5 + [429] * 2
        text = (await http.get("/health")).text
        assert "ratelimit" not in text.lower()
        metrics = await http.get("/metrics")
        assert metrics.status_code == 429  # still limited, in process


async def test_a_frozen_redis_costs_a_request_one_time_budget(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = limit_settings(
        tmp_path, cache_url=redis_server.url, write_rate_limit="5/hour", cache_timeout=0.05
    )
    async with run_app(settings) as app, app.client(ADDRESS) as http:
        assert await posts(http, 1) == [201]
        redis_server.freeze()
        for _ in range(3):
            started_at = time.monotonic()
            assert (await http.get(EVENTS)).status_code == 200  # reads: no limit, no Redis
            assert time.monotonic() - started_at < 1.0
        # Writes: the cache and the limiter each give up after their budget; once the
        # breaker is open the limiter does not even try.
        for status in await posts(http, 5):
            assert status in {201, 429}
        redis_server.thaw()


async def test_without_the_lifespan_the_limits_stay_in_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # The app is used without its lifespan (no Redis client opened): limits still hold.
    settings = limit_settings(tmp_path, cache_url=redis_server.url, rate_limit="1/hour")
    async with run_app(settings, lifespan=False) as running:
        http = running.http
        assert (await http.get("/nowhere")).status_code == 404
        assert (await http.get("/nowhere")).status_code == 429
