"""Opens the store named by the settings. Only the composition root calls this."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventapi.events.store import BulkEventStore
from eventapi.settings import Settings, sqlite_path


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[BulkEventStore]:
    store: BulkEventStore
    if settings.store_backend == "sqlite":
        from eventapi.storage.sqlite import SqliteEventStore

        store = await SqliteEventStore.open(
            sqlite_path(settings.database_url), settings.store_timeout
        )
    else:
        from eventapi.storage.mongo import MongoEventStore

        store = await MongoEventStore.open(settings.database_url, settings.store_timeout)
    try:
        yield store
    finally:
        await store.close()
