"""The composition root: the only module that knows which store and cache implementations run.
Its lifespan opens every client and closes it; the layers in front of the routes are listed
here, in order."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware import Middleware

from eventapi import __version__, telemetry
from eventapi.cache.entry import Entry
from eventapi.cache.events import EventCache
from eventapi.cache.factory import limits_link, open_cache
from eventapi.cache.guard import GuardedCache
from eventapi.draining import Draining
from eventapi.events.admission import ListAdmission
from eventapi.events.known_queries import KnownQueries
from eventapi.events.router import router as events_router
from eventapi.events.service import EventService
from eventapi.events.store import EventStore
from eventapi.follow.router import router as follow_router
from eventapi.follow.stream import StreamSlots
from eventapi.follow.watch import ChangeWatch
from eventapi.http.access import check_access, cors
from eventapi.http.body_limit import BodyLimitMiddleware
from eventapi.http.caller import Callers
from eventapi.http.docs import OPENAPI_URL, install_docs
from eventapi.http.fastpath import ReadEdge
from eventapi.http.gate import Gate
from eventapi.http.health import router as health_router
from eventapi.http.limits import rate_limits
from eventapi.http.metrics import router as metrics_router
from eventapi.http.observe import ObserveMiddleware
from eventapi.http.openapi import document_builder
from eventapi.http.problems import http_error_handler, install_error_handlers
from eventapi.http.slashes import install_slash_redirect
from eventapi.logs import RequestLog
from eventapi.metrics import Metrics
from eventapi.runtime import Runtime, State
from eventapi.settings import Settings, sqlite_path
from eventapi.storage.factory import open_store

log = logging.getLogger("eventapi")
# The request log is info: written at these levels of EVENTAPI_LOG_LEVEL.
REQUEST_LEVELS = frozenset({"debug", "info"})

StoreOpener = Callable[[Settings], AbstractAsyncContextManager[EventStore]]
CacheOpener = Callable[[Settings, Metrics], AbstractAsyncContextManager[GuardedCache[Entry] | None]]

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
    server process runs (app_from_env).

    Raises AccessRefused (production without keys) or ValueError (a limit that is not one)
    before anything is opened."""
    settings = settings or Settings()
    metrics = Metrics()
    keys = check_access(settings)
    callers = Callers(settings.api_keys.digests)  # without keys: every caller is its address
    limits = rate_limits(settings, metrics)
    request_log = RequestLog(settings.log_format) if settings.log_level in REQUEST_LEVELS else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            if request_log is not None:
                stack.callback(request_log.flush)  # the lines still waiting (logs.RequestLog)
            opened_store = await stack.enter_async_context(store(settings))
            opened_cache = await stack.enter_async_context(cache(settings, metrics))
            log.info("event store: %s", described_store(settings))
            streams = StreamSlots(
                settings.streams_per_process,
                settings.streams_per_client,
                asyncio.Semaphore(settings.list_queries_per_process),
            )
            watch = ChangeWatch(
                opened_store, settings.changes_poll_interval, lambda: streams.open > 0
            )
            await watch.start()
            stack.push_async_callback(watch.close)
            stack.callback(Draining.listen(watch.drain))
            if opened_cache is not None:
                guarded = opened_cache
                metrics.breaker_open.set_function(lambda: 0.0 if guarded.connected else 1.0)
                # Writes made elsewhere (another process, the seeder) or whose invalidation
                # failed reach this cache through the store's change log.
                await guarded.start(opened_store, settings.cache_relay_interval)
            if limits is not None and limits.tokens is not None:
                link = limits_link(settings, opened_cache)
                if link is None:
                    log.info("rate limits: no Redis, so each process limits on its own")
                else:
                    limits.tokens.attach(link)
                    stack.push_async_callback(limits.tokens.close)
            admission = ListAdmission(
                settings.list_queries_per_process, settings.list_queries_per_client
            )
            runtime = Runtime(
                settings=settings,
                metrics=metrics,
                store=opened_store,
                cache=opened_cache,
                callers=callers,
                service=EventService(
                    opened_store,
                    EventCache.configured(opened_cache, settings, lambda: watch.head),
                    metrics,
                    admission,
                ),
                admission=admission,
                known_queries=KnownQueries(),
                request_log=request_log,
                watch=watch,
                streams=streams,
            )
            if freeze_gc:
                # Everything built so far lives as long as the process: move it out of the
                # collector's reach, or every full collection walks it again for nothing
                # (measured: 30-45 ms pauses every ~0.3 s under load).
                gc.collect()
                gc.freeze()
            yield {"runtime": runtime}

    # Every layer in front of the routes, outermost first. Each costs a call on the cached
    # hit path, so there are as few as the guarantees allow; a HEAD is a GET to every layer
    # inside the first.
    cors_layer = cors(settings)
    middleware = [
        # request id, latency, request log; a HEAD goes on as a GET (http/observe.py)
        Middleware(ObserveMiddleware, metrics=metrics, request_log=request_log),
        # a browser's preflight is answered before the key check (http/access.py)
        *([cors_layer] if cors_layer is not None else []),
        # API keys, then rate limits, on the caller worked out once (http/gate.py)
        *(
            [Middleware(Gate, callers=callers, keys=keys, limits=limits)]
            if keys is not None or limits is not None
            else []
        ),
        # cached reads without routing; unseen list queries shed under load (http/fastpath.py)
        Middleware(ReadEdge, serve=fast_path),
        # bodies over EVENTAPI_MAX_BODY_BYTES refused before they are read
        Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes),
    ]
    app = FastAPI(
        title="eventapi",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=middleware,
        openapi_url=OPENAPI_URL,
        # Starlette's redirect reflects the Host header; http/slashes.py redirects instead.
        redirect_slashes=False,
        # FastAPI's pages load their code from CDNs: http/docs.py serves the package's own.
        docs_url=None,
        redoc_url=None,
        **telemetry.fastapi_options(),
    )
    install_docs(app)
    routers = (events_router, follow_router, health_router, metrics_router)
    on_http_error = http_error_handler(routers)
    install_error_handlers(app, on_http_error)
    install_slash_redirect(app, not_found=on_http_error)
    for router in routers:
        app.include_router(router)
    app.openapi = document_builder(app, settings.max_body_bytes, keys, limits)  # type: ignore[method-assign]
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
