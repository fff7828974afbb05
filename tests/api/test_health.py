"""GET /health while the database answers."""

from __future__ import annotations

import httpx

from eventapi.events.store import EventStore


async def test_health_is_200_and_names_the_store(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "status": "healthy",
        "redis": "not configured",
        "mongodb": "connected" if store.backend == "mongodb" else "not configured",
        "store": store.backend,
        "database": "connected",
    }


async def test_health_with_the_default_sqlite_store(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "redis": "not configured",
        "mongodb": "not configured",
        "store": "sqlite",
        "database": "connected",
    }
