"""App factories the benchmark serves with ``uvicorn --factory``, built through
create_app's injection points (the product has no benchmark-only setting).

The app without added latency is the product's own ``eventapi.app:app_from_env``, started
with ``eventapi serve``. slow_app is a factory the console script cannot start: uvicorn
serves it with the protocol class and options `eventapi serve` passes (server.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bench.options import MAX_STORE_LATENCY
from bench.server import LATENCY_ENV
from bench.slow_store import DelayedStore
from eventapi.app import create_app
from eventapi.events.store import EventStore
from eventapi.settings import Settings
from eventapi.storage.factory import open_store


def latency_from_env() -> float:
    raw = os.environ.get(LATENCY_ENV, "")
    try:
        latency = float(raw)
    except ValueError:
        raise ValueError(f"{LATENCY_ENV}={raw!r}: give seconds, e.g. 0.05") from None
    if not (math.isfinite(latency) and 0 < latency <= MAX_STORE_LATENCY):
        limit = f"{MAX_STORE_LATENCY:g}"
        raise ValueError(f"{LATENCY_ENV}={raw!r}: must be above 0 and at most {limit}")
    return latency


def slow_app() -> FastAPI:
    """Factory for ``uvicorn --factory bench.apps:slow_app``: the app over the store named
    by the EVENTAPI_* settings, with BENCH_STORE_LATENCY seconds added to each request."""
    latency = latency_from_env()

    @asynccontextmanager
    async def slow_store(settings: Settings) -> AsyncIterator[EventStore]:
        async with open_store(settings) as inner:
            yield DelayedStore(inner, latency)

    # Like app_from_env, the one app of a server process: freeze what start-up built.
    return create_app(Settings(), store=slow_store, freeze_gc=True)
