"""GET /health: the original keys (status, redis, mongodb), plus which store is in use."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from eventapi.cache.base import CacheUnavailable
from eventapi.deps import CacheDep, StoreDep
from eventapi.errors import StoreUnavailable

Status = Literal["healthy", "degraded", "unhealthy"]
Link = Literal["connected", "disconnected", "not configured"]


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
    redis: Link
    mongodb: Link
    store: Literal["sqlite", "mongodb"]
    database: Link


router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is not answering"}},
)
async def health(store: StoreDep, cache: CacheDep, response: Response) -> Health:
    try:
        await store.ping()
        database: Link = "connected"
    except StoreUnavailable:
        database = "disconnected"
    redis: Link = "not configured"
    if cache is not None and cache.backend == "redis":
        try:
            await cache.ping()
            redis = "connected"
        except CacheUnavailable:
            redis = "disconnected"
    status: Status = "healthy" if redis != "disconnected" else "degraded"
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
