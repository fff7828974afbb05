"""Tiny dependency getters over the app's state (runtime.py), exposed as Annotated aliases
for the routes.

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool,
which for a one-line attribute lookup costs more than the whole cached request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eventapi.cache.entry import Entry
from eventapi.cache.guard import GuardedCache
from eventapi.events.service import EventService
from eventapi.events.store import EventStore
from eventapi.runtime import Runtime, runtime_of


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request.scope)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# Each reads the state itself: a dependency of a dependency costs every request a second
# resolution.
async def get_service(request: Request) -> EventService:
    return runtime_of(request.scope).service


async def get_store(request: Request) -> EventStore:
    return runtime_of(request.scope).store


async def get_cache(request: Request) -> GuardedCache[Entry] | None:
    return runtime_of(request.scope).cache


ServiceDep = Annotated[EventService, Depends(get_service)]
StoreDep = Annotated[EventStore, Depends(get_store)]
CacheDep = Annotated[GuardedCache[Entry] | None, Depends(get_cache)]
