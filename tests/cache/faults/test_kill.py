"""Redis is SIGKILLed in the middle of a mixed workload, then restarted."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cache.faults.helpers import Json, health, read_until_hit, wait_for_redis
from tests.support.api import EVENTS, create, event
from tests.support.app import RunningApp
from tests.support.backends import open_backend
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

BATCHES = 36
KILL_BEFORE_BATCH = 18
LIST_ALL = {"limit": "100"}
LIST_PAGE = {"limit": "5", "sort": "-title"}


@dataclass(frozen=True)
class Op:
    method: str
    url: str
    target: str | None = None  # the event id a write or an item read is about
    body: Json | None = None
    params: dict[str, str] | None = None


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    before_kill: Counter[str] = field(default_factory=Counter)
    after_kill: Counter[str] = field(default_factory=Counter)
    requests: int = 0


def plan(rng: random.Random, batch: int, model: dict[str, Json], gone: list[str]) -> list[Op]:
    """About 11 concurrent requests; each event id is written at most once per batch."""
    ids = sorted(model)
    rng.shuffle(ids)
    put_id, *rest = ids
    ops = [
        Op("PUT", f"{EVENTS}/{put_id}", put_id, event(f"put {batch}", 1 + batch % 28)),
        Op("POST", EVENTS, None, event(f"new {batch}", 1 + (batch * 7) % 28)),
        Op("PATCH", f"{EVENTS}/{rest[0]}", rest[0], {"location": f"room {batch}"}),
    ]
    untouched = rest[1:]
    if batch % 3 == 0 and len(untouched) > 6:
        victim = untouched.pop()
        ops.append(Op("DELETE", f"{EVENTS}/{victim}", victim))
    # Reads of ids nobody writes in this batch, so their expected body is known exactly;
    # one of them may be a deleted id (expected: 404).
    readable = untouched[:5] + gone[-1:]
    ops += [Op("GET", f"{EVENTS}/{event_id}", event_id) for event_id in readable]
    ops += [
        Op("GET", EVENTS, params=LIST_ALL),
        Op("GET", EVENTS, params=LIST_PAGE),
    ]
    return ops


async def send(http: httpx.AsyncClient, op: Op) -> httpx.Response:
    return await http.request(op.method, op.url, json=op.body, params=op.params)


async def check_list(http: httpx.AsyncClient, model: dict[str, Json]) -> httpx.Response:
    """A list read on its own (no write in flight): exactly the acknowledged state."""
    response = await http.get(EVENTS, params=LIST_ALL)
    assert response.status_code == 200, response.text
    assert {item["id"]: item for item in response.json()} == model
    assert response.headers["x-total-count"] == str(len(model))
    return response


async def test_redis_killed_mid_load(
    harness: RunningApp, redis_server: RedisServer, tmp_path: Path
) -> None:
    http = harness.http
    rng = random.Random(20251201)
    model: dict[str, Json] = {}
    gone: list[str] = []
    for n in range(10):
        created = await create(http, f"seed {n}", 1 + n)
        model[created["id"]] = created
    tally = Tally()
    killed = False

    for batch in range(BATCHES):
        if batch == KILL_BEFORE_BATCH:
            redis_server.kill()
            killed = True
        ops = plan(rng, batch, model, gone)
        responses = await asyncio.gather(*(send(http, op) for op in ops))
        tally.requests += len(ops)
        for op, response in zip(ops, responses, strict=True):
            tally.statuses[response.status_code] += 1
            assert response.status_code < 500, f"{op.method} {op.url}: {response.text}"
            if op.method == "GET":
                # A 404 is a problem document: no X-Cache header.
                outcome = response.headers.get("x-cache", "none")
                (tally.after_kill if killed else tally.before_kill)[outcome] += 1
                if op.target is None:
                    assert response.status_code == 200, response.text
                elif op.target in model:
                    assert response.status_code == 200, response.text
                    assert response.json() == model[op.target], (batch, killed, outcome)
                else:
                    assert response.status_code == 404, (batch, killed, response.text)
        # Acknowledged writes become the expected state.
        for op, response in zip(ops, responses, strict=True):
            if op.method == "POST":
                assert response.status_code == 201, response.text
                model[response.json()["id"]] = response.json()
            elif op.method in ("PUT", "PATCH"):
                assert response.status_code == 200, response.text
                assert op.target is not None
                model[op.target] = response.json()
            elif op.method == "DELETE":
                assert response.status_code == 200, response.text
                assert op.target is not None
                del model[op.target]
                gone.append(op.target)
        listed = await check_list(http, model)
        tally.requests += 1
        if killed:
            assert listed.headers["x-cache"] == "BYPASS"
        if batch == KILL_BEFORE_BATCH:
            assert await health(http) == {
                "status": "degraded",
                "redis": "disconnected",
                "mongodb": "not configured",
                "store": "sqlite",
                "database": "connected",
            }

    assert tally.requests >= 400
    assert set(tally.statuses) <= {200, 201, 404}, tally.statuses
    assert tally.before_kill["HIT"] > 0, tally.before_kill  # the cache was really in use
    assert set(tally.after_kill) <= {"BYPASS", "none"}, tally.after_kill
    assert tally.after_kill["BYPASS"] > 100, tally.after_kill

    # Every acknowledged write is in the store, read directly (a second connection).
    async with open_backend("sqlite", tmp_path) as store:
        assert await store.count() == len(model)
        for event_id, expected in model.items():
            stored = await store.get(event_id)
            assert stored is not None, event_id
            assert json.loads(stored.model_dump_json()) == expected
        for event_id in gone:
            assert await store.get(event_id) is None

    # While Redis is down, /health stays 200 and says degraded.
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["redis"] == "disconnected"

    # Redis comes back (empty): the app reconnects on its own, through the probe.
    redis_server.restart()
    await wait_for_redis(http, "connected", step=harness.settings.cache_breaker_reset)
    assert (await health(http))["status"] == "healthy"
    some_id = sorted(model)[0]
    first = await http.get(f"{EVENTS}/{some_id}")
    second = await http.get(f"{EVENTS}/{some_id}")
    assert [first.headers["x-cache"], second.headers["x-cache"]] == ["MISS", "HIT"]
    assert first.json() == second.json() == model[some_id]
    pages = await read_until_hit(http, f"{EVENTS}?limit=100", step=0.01, max_reads=3)
    assert [r.headers["x-cache"] for r in pages] == ["MISS", "HIT"]
    assert {item["id"]: item for item in pages[-1].json()} == model
