"""The peers: two other ways to put Redis in front of the same event store, served beside our
app in the same run (``uvicorn --factory bench.peers:tutorial_app`` and
``bench.peers:fastapi_cache_app``), so the results table can say how ours compares.

- ``tutorial_app``: cache-aside as the original README describes it, written as a tutorial
  would: a FastAPI route ``GET /api/events/{event_id}`` does a Redis GET; on a hit it
  ``json.loads`` the value and returns a Pydantic model, which FastAPI validates against
  the response model and serialises; on a miss it reads the SQLite row (sqlite3 in a worker
  thread, ``asyncio.to_thread``), SETs its JSON with a time-to-live and returns it.
- ``fastapi_cache_app``: the same route and store under fastapi-cache2's ``@cache``
  decorator on its ``RedisBackend`` (redis.asyncio). Each lookup is the backend's own
  pipeline (MULTI, TTL, GET, EXEC); a hit is decoded by its ``JsonCoder`` and handed to
  FastAPI, which validates and serialises it as for any return value; the decorator also
  sets Cache-Control, ETag and X-FastAPI-Cache.

  fastapi-cache2 0.2.2 runs unchanged on FastAPI 0.165, Starlette 1.x and redis-py 8: no
  shim. It needs jinja2 installed (its coder imports ``starlette.templating``, which raises
  without it) and pendulum (a dependency it declares). Its ``redis`` extra pins redis-py
  below 5, so it is installed without the extra, on the redis-py the app already uses.

Neither is tuned and neither is handicapped: the defaults of each library, one Redis client
(redis-py's default pool) per process, and no store access on a hit. Neither keeps a cache
entry coherent with writes (no invalidation, a TTL only): they are measured on item hits
only. The data is the run's seeded SQLite file (the ``events`` table the app's store
writes), named by BENCH_PEER_DATABASE; Redis by BENCH_PEER_REDIS_URL. GET /health answers
200 so the bench can tell when a peer is up.
"""

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

DATABASE_ENV = "BENCH_PEER_DATABASE"  # path of the SQLite file
REDIS_ENV = "BENCH_PEER_REDIS_URL"
TTL = 300  # seconds a cached event lives (both peers)


class Event(BaseModel):
    id: str
    title: str
    description: str | None = None
    date: datetime
    location: str | None = None
    category: str | None = None
    organizer: str | None = None


def _setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def read_event(database: str, event_id: str) -> Event | None:
    """The event's row in the store's SQLite file, as a tutorial reads it (blocking)."""
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT id, title, description, date_utc AS date, location, category, organizer"
            " FROM events WHERE id = ?",
            (event_id,),
        ).fetchone()
    return None if row is None else Event(**dict(row))


def tutorial_app() -> FastAPI:
    """Factory: the tutorial cache-aside (see the module docstring)."""
    database, url = _setting(DATABASE_ENV), _setting(REDIS_ENV)
    cache = redis.Redis.from_url(url, decode_responses=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await cache.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/events/{event_id}")
    async def get_event(event_id: str) -> Event:
        cached = await cache.get(f"event:{event_id}")
        if cached is not None:
            return Event(**json.loads(cached))
        event = await asyncio.to_thread(read_event, database, event_id)
        if event is None:
            raise HTTPException(status_code=404, detail="Event not found")
        await cache.set(f"event:{event_id}", event.model_dump_json(), ex=TTL)
        return event

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def fastapi_cache_app() -> FastAPI:
    """Factory: fastapi-cache2's ``@cache`` on its RedisBackend (see the module docstring)."""
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.redis import RedisBackend
    from fastapi_cache.decorator import cache

    database, url = _setting(DATABASE_ENV), _setting(REDIS_ENV)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = redis.Redis.from_url(url)  # bytes: its coder decodes them
        FastAPICache.init(RedisBackend(client), prefix="fastapi-cache")
        yield
        FastAPICache.reset()
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/events/{event_id}")
    @cache(expire=TTL)
    async def get_event(event_id: str) -> Event:
        event = await asyncio.to_thread(read_event, database, event_id)
        if event is None:
            raise HTTPException(status_code=404, detail="Event not found")
        return event

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
