"""The one app launcher: the real app in this process, its lifespan entered, and HTTP
clients for it.

Every in-process test starts the app through ``run_app`` and reaches what the app opened
(its store, cache, read-through, ...) only through ``RunningApp``'s properties: how the app
holds those is the app's business, and this module is the one place that knows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp

from eventapi.app import StoreOpener, create_app
from eventapi.cache.base import Cache
from eventapi.cache.guard import GuardedCache
from eventapi.cache.readthrough import ReadThrough
from eventapi.events.store import EventStore
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

    def _state(self, name: str) -> Any:
        return getattr(self.app.state, name)

    @property
    def reads(self) -> ReadThrough:
        reads: ReadThrough = self._state("reads")
        return reads

    @property
    def cache(self) -> Cache:
        cache: Cache = self._state("cache")
        return cache

    @property
    def guard(self) -> GuardedCache:
        cache = self._state("cache")
        assert isinstance(cache, GuardedCache)
        return cache

    @property
    def store(self) -> EventStore:
        store: EventStore = self._state("store")
        return store

    @property
    def known_queries(self) -> Any:
        """The list queries the app has validated (eventapi.http.fastpath.KnownQueries)."""
        return self._state("known_queries")

    @property
    def request_log(self) -> Any:
        """The app's request log (eventapi.telemetry)."""
        return self._state("request_log")

    @property
    def held_settings(self) -> Settings:
        """The settings as the app holds them (which may differ from ``settings``: e.g. API
        keys are kept as digests only)."""
        held: Settings = self._state("settings")
        return held


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
        if lifespan:
            manager = await stack.enter_async_context(LifespanManager(made))
            asgi = manager.app
        http = await stack.enter_async_context(
            http_client(asgi, raise_app_exceptions=raise_app_exceptions)
        )
        yield RunningApp(made, asgi, http, settings)
