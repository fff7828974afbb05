"""The composition root: the only module that knows which store and cache implementations run."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute

from eventapi import __version__, telemetry
from eventapi.cache.factory import open_cache
from eventapi.cache.guard import GuardedCache
from eventapi.cache.readthrough import ReadThrough
from eventapi.events.admission import ListAdmission
from eventapi.events.router import router as events_router
from eventapi.events.service import EventService, Ttls
from eventapi.events.store import EventStore
from eventapi.http.access import install_access
from eventapi.http.body_limit import install_body_limit
from eventapi.http.docs import install_docs
from eventapi.http.fastpath import KnownQueries, ReadFastPath
from eventapi.http.head import HeadAsGet
from eventapi.http.health import router as health_router
from eventapi.http.limits import install_limits
from eventapi.http.metrics import router as metrics_router
from eventapi.http.observe import ObserveMiddleware
from eventapi.http.problems import install_error_handlers, on_http_error
from eventapi.http.shedding import ShedListQueries
from eventapi.http.slashes import install_slash_redirect
from eventapi.logs import RequestLog
from eventapi.metrics import Metrics
from eventapi.settings import Settings, sqlite_path
from eventapi.storage.factory import open_store

log = logging.getLogger("eventapi")
# The request log is info: written at these levels of EVENTAPI_LOG_LEVEL.
REQUEST_LEVELS = frozenset({"debug", "info"})

StoreOpener = Callable[[Settings], AbstractAsyncContextManager[EventStore]]
CacheOpener = Callable[[Settings, Metrics], AbstractAsyncContextManager[GuardedCache | None]]

DESCRIPTION = """
Create, list, read, update and delete events. Reads are served through a cache-aside layer
(`X-Cache: HIT | MISS | BYPASS`, strong `ETag`, `If-None-Match` -> 304).

Errors are RFC 9457 `application/problem+json`. Ids are 24-character hex ObjectIds.
Dates are ISO 8601 strings (never numbers or Unix time): naive values come back as sent,
aware ones in UTC, to the millisecond.

Request bodies are one JSON document sent as `application/json` (or any `application/*+json`
type, e.g. `application/merge-patch+json` for PATCH): another or no `Content-Type` is 415, a
body that is not JSON is 400, JSON that does not fit the schema is 422. Every GET path also
answers HEAD. A path with a trailing slash is redirected (307, relative `Location`) to the
path without it.
"""


def create_app(
    settings: Settings | None = None,
    *,
    store: StoreOpener = open_store,
    cache: CacheOpener = open_cache,
    fast_path: bool = True,
    freeze_gc: bool = False,
) -> FastAPI:
    """``store`` and ``cache`` open the clients (tests and the benchmark inject their own).
    ``fast_path=False`` leaves the cached reads (GET /api/events/{id}, GET /api/events) to
    the FastAPI routes (the API tests run both ways). ``freeze_gc``: for the one app a
    server process runs (app_from_env)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store(settings) as opened_store, cache(settings, metrics) as opened_cache:
            log.info("event store: %s", described_store(settings))
            if opened_cache is not None:
                guarded = opened_cache
                metrics.breaker_open.set_function(lambda: 0.0 if guarded.connected else 1.0)
                # Writes made elsewhere (another process, the seeder) or whose invalidation
                # failed reach this cache through the store's change log.
                await guarded.start(opened_store, settings.cache_relay_interval)
            # A lease lasts as long as the slowest store read may; an orphaned one (its
            # holder crashed, or Redis ran it after the caller gave up) only costs other
            # readers cache_lease_wait before they read the store themselves.
            reads = ReadThrough(
                opened_cache,
                lease_seconds=settings.store_timeout,
                wait_seconds=settings.cache_lease_wait,
            )
            ttls = Ttls(settings.cache_ttl, settings.cache_missing_ttl, settings.cache_list_ttl)
            app.state.store = opened_store
            app.state.cache = opened_cache
            app.state.reads = reads
            admission = ListAdmission(
                settings.list_queries_per_process, settings.list_queries_per_client
            )
            app.state.service = EventService(opened_store, reads, metrics, ttls, admission)
            if freeze_gc:
                # Everything built so far lives as long as the process: move it out of the
                # collector's reach, or every full collection walks it again for nothing
                # (measured: 30-45 ms pauses every ~0.3 s under load).
                gc.collect()
                gc.freeze()
            try:
                yield
            finally:
                if request_log is not None:
                    request_log.flush()  # the lines still waiting (logs.RequestLog)

    app = FastAPI(
        title="eventapi",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Starlette's redirect reflects the Host header; http/slashes.py redirects instead.
        redirect_slashes=False,
        # FastAPI's pages load their code from CDNs: http/docs.py serves the package's own.
        docs_url=None,
        redoc_url=None,
        **telemetry.fastapi_options(),
    )
    install_docs(app)  # before access and limits, which ask where the docs are
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    install_slash_redirect(app, not_found=on_http_error)
    routers = [events_router, health_router, metrics_router]
    for router in routers:
        app.include_router(router)
    app.state.methods_by_path = [
        (route.path_regex, route.methods)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    # Outermost last: observe (id, latency, log) -> HEAD as GET -> access -> limits -> list
    # shedding -> read fast path -> body limit -> FastAPI. A HEAD is a GET to everything
    # inside HeadAsGet (http/head.py).
    install_body_limit(app, settings.max_body_bytes)
    app.state.known_queries = KnownQueries()  # learned by the list route
    if fast_path:
        app.add_middleware(ReadFastPath, known=app.state.known_queries)
    app.add_middleware(ShedListQueries, known=app.state.known_queries)
    install_limits(app, settings)
    install_access(app, settings)
    app.add_middleware(HeadAsGet)
    request_log = RequestLog(settings.log_format) if settings.log_level in REQUEST_LEVELS else None
    app.state.request_log = request_log
    app.add_middleware(ObserveMiddleware, metrics=metrics, request_log=request_log)
    return app


def described_store(settings: Settings) -> str:
    """What the start-up log says of the store: the SQLite file's full path, or the MongoDB
    URL without its password."""
    if settings.store_backend == "sqlite":
        return f"SQLite file {Path(sqlite_path(settings.database_url)).resolve()}"
    return f"MongoDB at {settings.safe_database_url}"


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory eventapi.app:app_from_env`` (what `eventapi serve`
    runs in each worker): settings from the environment."""
    return create_app(freeze_gc=True)
