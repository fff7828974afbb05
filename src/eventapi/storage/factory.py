"""Opens the store named by the settings. Only the composition root calls this."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventapi.changes import Retention
from eventapi.events.store import BulkEventStore
from eventapi.settings import Settings, sqlite_path


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[BulkEventStore]:
    store: BulkEventStore
    keep = Retention(settings.changes_retention, settings.changes_max_records)
    if settings.store_backend == "sqlite":
        from eventapi.storage.sqlite import SqliteEventStore

        store = await SqliteEventStore.open(
            sqlite_path(settings.database_url), settings.store_timeout, keep
        )
    else:
        from eventapi.storage.mongo import MongoEventStore

        store = await MongoEventStore.open(settings.database_url, settings.store_timeout, keep)
    try:
        yield store
    finally:
        await store.close()
