"""Shared helpers for the fault-injection tests: run the real app, poll it, read /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventapi.cache.guard import fence_for
from eventapi.settings import Settings
from tests.support.api import event, item
from tests.support.poll import NotYet, eventually
from tests.support.settings import app_settings

ITEM_ROUTE = "/api/events/{event_id}"
# The bound for one read while Redis is failing, asserted with a margin for a busy machine:
# quiet, the slowest read of a batch takes 0.06 s (one 50 ms Redis call, then the breaker
# opens); with the other core's tests starving this process, CI saw 0.29 s. A read that
# waited on the frozen Redis itself would take the whole outage (7 s and more).
OUTAGE_BUDGET = 1.0
# A write whose invalidation failed is acknowledged only past the fence (cache/guard.py):
# its bound is the fence's length plus that budget.
FENCE = fence_for(Settings().cache_relay_interval)
WRITE_OUTAGE_BUDGET = FENCE + OUTAGE_BUDGET

Json = dict[str, Any]


def fault_settings(
    tmp_path: Path, cache_url: str, *, breaker_reset: float = 0.2, cache_timeout: float = 0.05
) -> Settings:
    # events.db: the file open_backend("sqlite", tmp_path) opens, to read what the app wrote.
    return app_settings(
        tmp_path / "events.db",
        cache_url=cache_url,
        cache_timeout=cache_timeout,
        cache_breaker_reset=breaker_reset,
    )


async def replace(http: httpx.AsyncClient, event_id: str, title: str, day: int = 1) -> Json:
    response = await http.put(item(event_id), json=event(title, day))
    assert response.status_code == 200, response.text
    replaced: Json = response.json()
    return replaced


async def health(http: httpx.AsyncClient) -> Json:
    response = await http.get("/health")
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def wait_for_redis(
    http: httpx.AsyncClient, state: str, step: float, within: float = 10.0
) -> None:
    """Bounded readiness poll of /health until it reports ``redis: state``.

    Polling also drives recovery: a call made while the breaker is open starts the probe.
    """
    seen: list[str] = []

    async def redis_state() -> bool:
        seen.append((await health(http))["redis"])
        return seen[-1] == state

    try:
        await eventually(redis_state, f"/health saying redis={state!r}", within=within, step=step)
    except NotYet:
        pytest.fail(f"/health never said redis={state!r} within {within}s: {seen[-5:]}")


async def read_until_hit(
    http: httpx.AsyncClient, url: str, step: float, max_reads: int = 100, within: float = 10.0
) -> list[httpx.Response]:
    """GET ``url`` until X-Cache is HIT, at most ``max_reads`` times (and for ``within``
    seconds); returns every response, the HIT last. Waits ``step`` after a BYPASS (the
    breaker is open: give the probe its reset time)."""
    responses: list[httpx.Response] = []

    async def hit() -> bool:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        responses.append(response)
        if response.headers["x-cache"] == "BYPASS":
            await asyncio.sleep(step)
        return response.headers["x-cache"] == "HIT" or len(responses) == max_reads

    with contextlib.suppress(NotYet):
        await eventually(hit, f"{url} served from the cache", within=within, step=0)
    outcomes = [r.headers["x-cache"] for r in responses]
    if outcomes[-1] != "HIT":
        pytest.fail(f"{url} never came back as a cache HIT: {outcomes[-10:]}")
    return responses


@dataclass(frozen=True)
class Timed:
    response: httpx.Response
    seconds: float


async def timed(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Timed:
    started = time.perf_counter()
    response = await http.request(method, url, **kwargs)
    return Timed(response, time.perf_counter() - started)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 when the labelled child does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def redis_stat(raw_info: bytes, field: str) -> int:
    """A field of a raw ``INFO`` reply, e.g. total_commands_processed."""
    for line in raw_info.decode().splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"{field} not in INFO reply: {raw_info[:200]!r}")
