"""The real app in process: its lifespan entered, over a store the test opened, and an HTTP
client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.app import StoreOpener, create_app
from eventapi.cache.entry import Entry
from eventapi.cache.guard import GuardedCache
from eventapi.cache.readthrough import ReadThrough
from eventapi.events.store import EventStore
from eventapi.runtime import Runtime
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
    """``app`` with its lifespan entered (and left at the end), as a server runs it: every
    request's scope gets a copy of the state the lifespan yielded (if any)."""
    async with _entered(app) as (asgi, _):
        yield asgi


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[tuple[ASGIApp, Runtime]]:
    """The app of create_app with its lifespan entered, and the state it opened."""
    async with _entered(app) as (asgi, state):
        yield asgi, state["runtime"]


@asynccontextmanager
async def _entered(app: FastAPI) -> AsyncIterator[tuple[ASGIApp, dict[str, Any]]]:
    async with app.router.lifespan_context(app) as yielded:
        state = dict(yielded or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                scope["state"] = dict(state)
            await app(scope, receive, send)

        yield with_state, state


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` with its lifespan and yield an HTTP client talking to it."""
    async with started(app) as asgi, http_client(asgi) as http:
        yield http


@dataclass(frozen=True, slots=True)
class RunningApp:
    """One running app (lifespan entered), the settings it runs with, a client on it, and
    what its lifespan opened. Tests reach the app's insides only through here."""

    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings
    runtime: Runtime

    @property
    def reads(self) -> ReadThrough[Entry]:
        return self.runtime.service.cache.reads

    @property
    def guard(self) -> GuardedCache[Entry]:
        cache = self.runtime.cache
        assert isinstance(cache, GuardedCache)
        return cache


def flights(reads: ReadThrough[Any]) -> int:
    """The flights ``reads`` knows: not started yet, and under way (readthrough.py)."""
    return len(reads._joinable) + len(reads._started)


@asynccontextmanager
async def run_app(
    settings: Settings, store: EventStore, *, fast_path: bool = True
) -> AsyncIterator[RunningApp]:
    """The real app over ``store`` (opened and closed by the caller), lifespan included."""
    app = create_app(settings, store=injected(store), fast_path=fast_path)
    async with lifespan(app) as (asgi, runtime), http_client(asgi) as http:
        yield RunningApp(app, http, settings, runtime)
