"""GET /health: the original keys (status, redis, mongodb), plus which store is in use."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from eventapi.deps import StoreDep
from eventapi.errors import StoreUnavailable

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

    status: Literal["healthy", "degraded", "unhealthy"]
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
async def health(store: StoreDep, response: Response) -> Health:
    try:
        await store.ping()
        database: Link = "connected"
    except StoreUnavailable:
        database = "disconnected"
    response.status_code = 200 if database == "connected" else 503
    response.headers["Cache-Control"] = "no-store"
    return Health(
        status="healthy" if database == "connected" else "unhealthy",
        redis="not configured",
        mongodb=database if store.backend == "mongodb" else "not configured",
        store=store.backend,
        database=database,
    )
