"""Tiny dependency getters, exposed as Annotated aliases for the routes.

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool,
which for a one-line attribute lookup costs more than the whole cached request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eventapi.cache.guard import GuardedCache
from eventapi.events.service import EventService
from eventapi.settings import Settings
from eventapi.storage.base import EventStore


async def get_service(request: Request) -> EventService:
    service: EventService = request.app.state.service
    return service


async def get_store(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


async def get_cache(request: Request) -> GuardedCache | None:
    cache: GuardedCache | None = request.app.state.cache
    return cache


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServiceDep = Annotated[EventService, Depends(get_service)]
StoreDep = Annotated[EventStore, Depends(get_store)]
CacheDep = Annotated[GuardedCache | None, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
