"""Scenario 5: a cold-key stampede. An event is created (a create leaves nothing in the
cache: nobody has read the new id); then as many connections as practical (default 1000),
all opened first, each send one GET of it at once. The store reads the server counted
meanwhile show whether the misses coalesced. (An update would not do: it leaves its new
value in the cache, cache/base.py "Warm writes", so the GETs would all hit.)
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import orjson

from bench import client
from bench.loadgen import LoadGenerator, Request, run_load
from bench.mixed import version_of
from bench.pinning import Pinning
from bench.stats import LoadResult
from bench.workloads import ITEM

EVENTS = "/api/events"


@dataclass
class StampedeResult:
    load: LoadResult
    delta: client.Delta
    stale: int  # GETs that did not see the write


def practical_connections(wanted: int) -> int:
    """``wanted``, or fewer if this process may not open that many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + 200
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return max(1, min(wanted, soft - 200))


def stampede(port: int, title: str, connections: int, pinning: Pinning) -> StampedeResult:
    written = {"title": f"{title} v1000000", "date": "2026-06-01T10:00:00"}
    status, _, body = client.request(port, "POST", EVENTS, orjson.dumps(written))
    if status != 201:
        raise RuntimeError(f"the stampede's create answered {status}")
    path = ITEM.format(orjson.loads(body)["id"])
    stale = 0

    def check(req: Request, status: int, head: bytes, body: bytes, t0: int, t1: int) -> None:
        nonlocal stale
        stale += status == 200 and version_of(body) != 1_000_000

    before = client.scrape(port)
    generator = LoadGenerator(
        port, lambda: path, connections=connections, requests=connections, on_response=check
    )
    with pinning.load_affinity():
        load = run_load(generator)
    after = client.scrape(port)
    return StampedeResult(load, client.Delta.between(before, after, "item"), stale)
