"""The real app in process: its lifespan entered, over a store the test opened, and an HTTP
client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp

from eventapi.app import StoreOpener, create_app
from eventapi.cache.guard import GuardedCache
from eventapi.cache.readthrough import ReadThrough
from eventapi.events.store import EventStore
from eventapi.settings import Settings


def injected(store: EventStore) -> StoreOpener:
    """For ``create_app(store=...)``: the app uses ``store``; whoever opened it closes it."""

    @asynccontextmanager
    async def use_store(_: Settings) -> AsyncIterator[EventStore]:
        yield store

    return use_store


@asynccontextmanager
async def http_client(
    app: ASGIApp, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[ASGIApp]:
    """``app`` with its lifespan entered (and left at the end)."""
    async with LifespanManager(app) as manager:
        asgi: ASGIApp = manager.app
        yield asgi


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` with its lifespan and yield an HTTP client talking to it."""
    async with started(app) as asgi, http_client(asgi) as http:
        yield http


@dataclass(frozen=True, slots=True)
class RunningApp:
    """One running app (lifespan entered), the settings it runs with, and a client on it."""

    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings

    @property
    def reads(self) -> ReadThrough:
        reads: ReadThrough = self.app.state.reads
        return reads

    @property
    def guard(self) -> GuardedCache:
        cache = self.app.state.cache
        assert isinstance(cache, GuardedCache)
        return cache


@asynccontextmanager
async def run_app(
    settings: Settings, store: EventStore, *, fast_path: bool = True
) -> AsyncIterator[RunningApp]:
    """The real app over ``store`` (opened and closed by the caller), lifespan included."""
    app = create_app(settings, store=injected(store), fast_path=fast_path)
    async with serve(app) as http:
        yield RunningApp(app, http, settings)
