"""While Redis does not answer (SIGSTOP, or CLIENT PAUSE), every request stays fast."""

from __future__ import annotations

import asyncio

import pytest

from tests.cache.faults.helpers import (
    FENCE,
    OUTAGE_BUDGET,
    WRITE_OUTAGE_BUDGET,
    Json,
    Timed,
    read_until_hit,
    timed,
    wait_for_redis,
)
from tests.support.api import EVENTS, create, event
from tests.support.app import RunningApp
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

BATCHES = 5
# Long enough for the whole workload: each batch's writes wait out the fence (1 s), and
# take 0.25 s more on a busy machine; 2.5 s to spare. (Not the writes' assertion margin:
# for mode ALL the test then waits for the pause to end.)
PAUSE_MS = int((BATCHES * (FENCE + 0.25) + 2.5) * 1000)
# A command each pause mode holds back: CLIENT PAUSE WRITE lets PING through.
HELD_BACK = {"ALL": b"PING\r\n", "WRITE": b"SET eventapi-test:paused 1\r\n"}


async def still_paused(redis_server: RedisServer, command: bytes) -> bool:
    """True if ``command`` on a fresh connection gets no answer within 100 ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", redis_server.port)
    try:
        writer.write(command)
        await writer.drain()
        try:
            async with asyncio.timeout(0.1):
                await reader.readline()
        except TimeoutError:
            return True
        return False
    finally:
        writer.close()
        await writer.wait_closed()


async def warm(harness: RunningApp, model: dict[str, Json]) -> None:
    """Every item and the list page cached (a HIT each). On a busy machine a Redis call may
    miss its 50 ms budget here: that read is a BYPASS, and the next ones fill and hit."""
    step = harness.settings.cache_breaker_reset
    for event_id in model:
        await read_until_hit(harness.http, f"{EVENTS}/{event_id}", step=step, max_reads=6)
    await read_until_hit(harness.http, f"{EVENTS}?limit=100", step=step, max_reads=6)


async def outage_workload(
    harness: RunningApp, model: dict[str, Json], *, ping_blocked: bool = True
) -> list[Timed]:
    """50 requests in batches of 10 concurrent ones: item reads, list reads, writes, health.
    Checks every body against the acknowledged state and updates ``model``.
    ``ping_blocked``: the outage also stops PING (not so under CLIENT PAUSE WRITE)."""
    http = harness.http
    ids = sorted(model)
    results: list[Timed] = []
    for batch in range(BATCHES):
        written = ids[batch]
        readable = [i for i in ids if i != written][:6]
        title = f"during outage {batch}"
        calls = [
            timed(http, "PUT", f"{EVENTS}/{written}", json=event(title, 2)),
            timed(http, "POST", EVENTS, json=event(f"created in outage {batch}", 3)),
            timed(http, "GET", EVENTS, params={"limit": "100"}),
            timed(http, "GET", "/health"),
            *(timed(http, "GET", f"{EVENTS}/{i}") for i in readable),
        ]
        batch_results = await asyncio.gather(*calls)
        results += batch_results
        put, post, listed, health, *reads = batch_results
        for result in batch_results:
            assert result.response.status_code < 500, result.response.text
        assert put.response.status_code == 200, put.response.text
        assert put.response.json()["title"] == title
        model[written] = put.response.json()
        assert post.response.status_code == 201, post.response.text
        model[post.response.json()["id"]] = post.response.json()
        assert listed.response.status_code == 200
        assert health.response.status_code == 200
        if ping_blocked:
            assert health.response.json()["redis"] == "disconnected"
            assert health.response.json()["status"] == "degraded"
        for event_id, read in zip(readable, reads, strict=True):
            assert read.response.status_code == 200, read.response.text
            assert read.response.json() == model[event_id]
    # A list read with no write in flight: exactly what was acknowledged.
    final = await timed(http, "GET", EVENTS, params={"limit": "100"})
    results.append(final)
    assert {item["id"]: item for item in final.response.json()} == model
    return results


def assert_fast(results: list[Timed], minimum: int = 50) -> None:
    """Reads within OUTAGE_BUDGET; writes, whose invalidations fail, past the fence and
    within WRITE_OUTAGE_BUDGET."""
    assert len(results) >= minimum
    slow = sorted(
        (round(r.seconds, 3), r.response.request.method, r.response.request.url.path)
        for r in results
        if r.seconds
        >= (OUTAGE_BUDGET if r.response.request.method == "GET" else WRITE_OUTAGE_BUDGET)
    )
    assert not slow, f"{len(slow)} of {len(results)} requests took too long: {slow}"


async def assert_resumes(harness: RunningApp, model: dict[str, Json]) -> None:
    """The app finds Redis again by itself, serves from the cache, and serves current data."""
    await wait_for_redis(harness.http, "connected", step=harness.settings.cache_breaker_reset)
    for event_id, expected in model.items():
        responses = await read_until_hit(
            harness.http, f"{EVENTS}/{event_id}", step=harness.settings.cache_breaker_reset
        )
        assert all(r.json() == expected for r in responses)
    responses = await read_until_hit(
        harness.http, f"{EVENTS}?limit=100", step=harness.settings.cache_breaker_reset
    )
    for response in responses:
        assert {item["id"]: item for item in response.json()} == model


@pytest.fixture
async def model(harness: RunningApp) -> dict[str, Json]:
    events = [await create(harness.http, f"event {n}", 1 + n) for n in range(8)]
    state = {e["id"]: e for e in events}
    await warm(harness, state)
    return state


async def test_frozen_redis_every_request_under_budget(
    harness: RunningApp, redis_server: RedisServer, model: dict[str, Json]
) -> None:
    redis_server.freeze()
    try:
        results = await outage_workload(harness, model)
    finally:
        redis_server.thaw()
    assert_fast(results)
    reads = [
        r for r in results if r.response.request.method == "GET" and "x-cache" in r.response.headers
    ]
    assert {r.response.headers["x-cache"] for r in reads} == {"BYPASS"}
    await assert_resumes(harness, model)


@pytest.mark.parametrize("mode", ["ALL", "WRITE"])
async def test_client_pause_every_request_under_budget(
    harness: RunningApp, redis_server: RedisServer, model: dict[str, Json], mode: str
) -> None:
    assert redis_server.command("CLIENT", "PAUSE", str(PAUSE_MS), mode) == b"+OK\r\n"
    results = await outage_workload(harness, model, ping_blocked=mode == "ALL")
    # The pause must have covered the whole workload, or the test proved nothing.
    assert await still_paused(redis_server, HELD_BACK[mode]), "the pause ended too early"
    if mode == "WRITE":  # CLIENT UNPAUSE itself is held back by a pause of ALL
        assert redis_server.command("CLIENT", "UNPAUSE") == b"+OK\r\n"
    assert_fast(results)
    reads = [r for r in results if "x-cache" in r.response.headers]
    assert "HIT" not in {r.response.headers["x-cache"] for r in reads}
    await assert_resumes(harness, model)


async def test_reads_stay_fast_after_a_freeze_caught_leases_on_the_wire(
    harness: RunningApp, redis_server: RedisServer
) -> None:
    """Leases sent just as Redis froze are not lost: the server runs them when it thaws,
    and nobody will ever fill those leases (their callers gave up and read the store).
    Once Redis is back, reading those events must not stall behind the orphaned leases."""
    http = harness.http
    events = [await create(http, f"event {n}", 1 + n) for n in range(10)]
    warm, cold = events[:5], events[5:]
    # Five pooled connections, each with the lease script loaded on the server.
    assert {
        r.status_code
        for r in await asyncio.gather(*(http.get(f"{EVENTS}/{e['id']}") for e in warm))
    } == {200}

    redis_server.freeze()
    try:
        during = await asyncio.gather(*(timed(http, "GET", f"{EVENTS}/{e['id']}") for e in cold))
    finally:
        redis_server.thaw()
    assert [r.response.json() for r in during] == cold
    assert {r.response.headers["x-cache"] for r in during} == {"BYPASS"}
    assert_fast(during, minimum=len(cold))

    await wait_for_redis(http, "connected", step=harness.settings.cache_breaker_reset)
    after = [await timed(http, "GET", f"{EVENTS}/{e['id']}") for e in cold]
    assert [r.response.json() for r in after] == cold
    seen = [(round(r.seconds, 3), r.response.headers["x-cache"]) for r in after]
    # Behind an orphaned lease a read waits EVENTAPI_CACHE_LEASE_WAIT (0.15 s), not the
    # lease's life (seconds), then reads the store.
    assert max(r.seconds for r in after) < OUTAGE_BUDGET, f"reads after recovery stalled: {seen}"
