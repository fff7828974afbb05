"""GET /health: the original keys (status, redis, mongodb), plus which store is in use."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from eventapi.cache.base import Cache, CacheUnavailable
from eventapi.deps import CacheDep, StoreDep
from eventapi.errors import StoreUnavailable
from eventapi.events.store import EventStore

Status = Literal["healthy", "degraded", "unhealthy"]
Link = Literal["connected", "disconnected", "not configured"]
# Redis may also answer and refuse writes (full under noeviction, read-only): degraded.
CacheLink = Literal["connected", "disconnected", "refusing writes", "not configured"]


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "healthy",
                    "redis": "connected",
                    "mongodb": "connected",
                    "store": "mongodb",
                    "database": "connected",
                }
            ]
        }
    )

    status: Status
    redis: CacheLink
    mongodb: Link
    store: Literal["sqlite", "mongodb"]
    database: Link


router = APIRouter(tags=["health"])


async def _database(store: EventStore) -> Link:
    try:
        await store.ping()  # bounded by the store timeout
    except StoreUnavailable:
        return "disconnected"
    return "connected"


async def _redis(cache: Cache[Any] | None) -> CacheLink:
    if cache is None or cache.backend != "redis":
        return "not configured"
    try:
        await cache.ping()  # bounded by the cache budget; at once while the breaker is open
    except CacheUnavailable as exc:
        return "refusing writes" if exc.reason == "refusing writes" else "disconnected"
    return "connected"


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is not answering"}},
)
async def health(store: StoreDep, cache: CacheDep, response: Response) -> Health:
    # Both checks at once: the answer takes the longer of their bounds, not the sum.
    database, redis = await asyncio.gather(_database(store), _redis(cache))
    status: Status = "healthy" if redis in ("connected", "not configured") else "degraded"
    if database != "connected":
        status = "unhealthy"
    response.status_code = 503 if status == "unhealthy" else 200
    response.headers["Cache-Control"] = "no-store"
    return Health(
        status=status,
        redis=redis,
        mongodb=database if store.backend == "mongodb" else "not configured",
        store=store.backend,
        database=database,
    )
