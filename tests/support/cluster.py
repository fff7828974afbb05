"""Clients for several real `eventapi serve` processes (started by tests/support/server.py)
sharing one database and one cache, and their /metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import Server

BREAKER_GAUGE = "eventapi_cache_breaker_open"
STORE_OPERATIONS = "eventapi_store_operations_total"


@dataclass(frozen=True)
class Api:
    """One server process (or one connection pool to it) as the tests address it."""

    name: str
    http: httpx.AsyncClient


@asynccontextmanager
async def clients(
    servers: Sequence[Server], names: Sequence[str] = (), keepalive: int = 200
) -> AsyncIterator[list[Api]]:
    """One AsyncClient per server, never through a proxy, with room for many connections.
    A small ``keepalive`` makes the client keep opening new connections, so that a
    `--workers` server's kernel-side accept spreads them over every worker."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=keepalive)
    async with contextlib.AsyncExitStack() as stack:
        apis = []
        for n, server in enumerate(servers):
            http = httpx.AsyncClient(
                base_url=server.url, trust_env=False, limits=limits, timeout=15.0
            )
            await stack.enter_async_context(http)
            apis.append(Api(names[n] if names else "ABCDEFGH"[n], http))
        yield apis


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(api: Api) -> Samples:
    response = await api.http.get("/metrics")
    assert response.status_code == 200, response.text
    return parse_metrics(response.text)


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
