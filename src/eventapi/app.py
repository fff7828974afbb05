"""The composition root: the only module that knows which store implementation runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from eventapi import __version__
from eventapi.errors import install_error_handlers
from eventapi.events.router import router as events_router
from eventapi.events.service import EventService
from eventapi.http.body_limit import BodyLimitMiddleware
from eventapi.http.health import router as health_router
from eventapi.settings import Settings
from eventapi.storage.base import EventStore
from eventapi.storage.factory import open_store

log = logging.getLogger("eventapi")

StoreOpener = Callable[[Settings], AbstractAsyncContextManager[EventStore]]

DESCRIPTION = """
Create, list, read, update and delete events. Reads are served through a cache-aside layer.

Errors are RFC 9457 `application/problem+json`. Ids are 24-character hex ObjectIds.
Dates are ISO 8601: naive values come back as sent, aware ones in UTC, to the millisecond.
"""


def create_app(settings: Settings | None = None, *, store: StoreOpener = open_store) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store(settings) as opened:
            log.info("event store: %s", opened.backend)
            app.state.store = opened
            app.state.service = EventService(opened)
            yield

    app = FastAPI(
        title="eventapi",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(events_router)
    app.include_router(health_router)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory eventapi.app:app_from_env``."""
    return create_app()
