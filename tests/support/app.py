"""The one app launcher: the real app in this process, its lifespan entered, and HTTP
clients for it.

Every in-process test starts the app through ``run_app`` and reaches what the app opened
(its store, cache, read-through, ...) only through ``RunningApp``'s properties: the app's
lifespan yields them as one typed state (eventapi/runtime.py), and this module is the one
place that looks into it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.app import StoreOpener, create_app
from eventapi.cache.entry import Entry
from eventapi.cache.guard import GuardedCache
from eventapi.cache.readthrough import ReadThrough
from eventapi.events.known_queries import KnownQueries
from eventapi.events.store import EventStore
from eventapi.logs import RequestLog
from eventapi.runtime import Runtime
from eventapi.settings import Settings

BASE_URL = "http://test"


def injected(store: EventStore) -> StoreOpener:
    """For ``create_app(store=...)``: the app uses ``store``; whoever opened it closes it."""

    @asynccontextmanager
    async def use_store(_: Settings) -> AsyncIterator[EventStore]:
        yield store

    return use_store


@asynccontextmanager
async def http_client(
    app: ASGIApp,
    *,
    address: str | None = None,
    root_path: str = "",
    headers: dict[str, str] | None = None,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in process, from client ``address`` (an IP) if
    given, as if behind a proxy serving it under ``root_path`` if given."""
    transport = httpx.ASGITransport(
        app=app,
        raise_app_exceptions=raise_app_exceptions,
        root_path=root_path,
        client=(address, 40000) if address else ("127.0.0.1", 123),
    )
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as http:
        yield http


@dataclass(frozen=True, slots=True)
class RunningApp:
    """One running app, the settings it was made with, and a client on it.

    ``asgi`` is what the clients call: the app with its lifespan entered (or the bare app
    when started with ``lifespan=False``)."""

    app: FastAPI
    asgi: ASGIApp
    http: httpx.AsyncClient
    given: Settings | None  # None: an app built elsewhere (``run_app(app=...)``)
    state: dict[str, Any]  # what the lifespan yielded (eventapi.runtime.State)

    @property
    def settings(self) -> Settings:
        """The settings the app was made with."""
        assert self.given is not None, "an app started with run_app(app=...) has no settings"
        return self.given

    def client(
        self,
        address: str | None = None,
        *,
        root_path: str = "",
        headers: dict[str, str] | None = None,
        raise_app_exceptions: bool = True,
    ) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        """Another client on this app (see ``http_client``), to use in ``async with``."""
        return http_client(
            self.asgi,
            address=address,
            root_path=root_path,
            headers=headers,
            raise_app_exceptions=raise_app_exceptions,
        )

    # What the app opened or holds. The only place the tests look inside the app.

    @property
    def runtime(self) -> Runtime:
        runtime = self.state.get("runtime")
        assert isinstance(runtime, Runtime), "started without create_app's lifespan"
        return runtime

    @property
    def reads(self) -> ReadThrough[Entry]:
        return self.runtime.service.cache.reads

    @property
    def cache(self) -> GuardedCache[Entry] | None:
        return self.runtime.cache

    @property
    def guard(self) -> GuardedCache[Entry]:
        cache = self.runtime.cache
        assert isinstance(cache, GuardedCache)
        return cache

    @property
    def store(self) -> EventStore:
        return self.runtime.store

    @property
    def known_queries(self) -> KnownQueries:
        """The list queries the app has validated (eventapi.events.known_queries)."""
        return self.runtime.known_queries

    @property
    def request_log(self) -> RequestLog:
        """The app's request log (eventapi.logs)."""
        log = self.runtime.request_log
        assert log is not None, "the request log is off at this EVENTAPI_LOG_LEVEL"
        return log

    @property
    def held_settings(self) -> Settings:
        """The settings as the app holds them (which may differ from ``settings``: e.g. API
        keys are kept as digests only)."""
        return self.runtime.settings


def flights(reads: ReadThrough[Any]) -> int:
    """The flights ``reads`` knows: not started yet, and under way (cache/readthrough.py)."""
    return len(reads._joinable) + len(reads._started)


@asynccontextmanager
async def entered(app: FastAPI) -> AsyncIterator[tuple[ASGIApp, dict[str, Any]]]:
    """``app`` with its lifespan entered (and left at the end), as a server runs it: every
    request's scope gets a copy of the state the lifespan yielded (if any). Also that state."""
    async with app.router.lifespan_context(app) as yielded:
        state = dict(yielded or {})

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                scope["state"] = dict(state)
            await app(scope, receive, send)

        yield with_state, state


@asynccontextmanager
async def run_app(
    settings: Settings | None = None,
    store: EventStore | None = None,
    *,
    opener: StoreOpener | None = None,
    app: FastAPI | None = None,
    fast_path: bool = True,
    lifespan: bool = True,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[RunningApp]:
    """The real app (``create_app(settings)``), its lifespan entered, and a client on it.

    The app uses ``store`` if given (opened and closed by the caller), else ``opener`` if
    given, else opens the store ``settings`` name. ``app`` runs an app built elsewhere
    (another factory, or ``create_app`` called by the test) instead. ``lifespan=False``
    leaves the lifespan out (nothing opened at start-up)."""
    if app is None:
        assert settings is not None, "run_app needs settings or an app"
        if store is not None:
            opener = injected(store)
        made = (
            create_app(settings, fast_path=fast_path)
            if opener is None
            else create_app(settings, store=opener, fast_path=fast_path)
        )
    else:
        made = app
    async with AsyncExitStack() as stack:
        asgi: ASGIApp = made
        state: dict[str, Any] = {}
        if lifespan:
            asgi, state = await stack.enter_async_context(entered(made))
        http = await stack.enter_async_context(
            http_client(asgi, raise_app_exceptions=raise_app_exceptions)
        )
        yield RunningApp(made, asgi, http, settings, state)
