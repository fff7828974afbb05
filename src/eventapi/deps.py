"""Tiny dependency getters, exposed as Annotated aliases for the routes.

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool,
which for a one-line attribute lookup costs more than the whole cached request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eventapi.cache.base import Cache
from eventapi.events.service import EventService
from eventapi.events.store import EventStore


async def get_service(request: Request) -> EventService:
    service: EventService = request.app.state.service
    return service


async def get_store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


async def get_cache(request: Request) -> Cache | None:
    cache: Cache | None = request.app.state.cache
    return cache


ServiceDep = Annotated[EventService, Depends(get_service)]
StoreDep = Annotated[EventStore, Depends(get_store)]
CacheDep = Annotated[Cache | None, Depends(get_cache)]
