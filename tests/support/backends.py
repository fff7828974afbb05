"""Open each EventStore backend the tests run against.

- sqlite:    a real SQLite file under the test's tmp_path.
- mongomock: MongoEventStore over mongomock-motor, an in-process FAKE MongoDB. No MongoDB
             server can be installed on the project's machines, so this is the stand-in.
- mongodb:   MongoEventStore over a real server, only when EVENTAPI_TEST_MONGODB_URL is set
             (each test gets its own database, dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from eventapi.events.store import EventStore
from eventapi.storage.mongo import MongoEventStore
from eventapi.storage.sqlite import SqliteEventStore

MONGODB_URL = os.environ.get("EVENTAPI_TEST_MONGODB_URL")
BACKENDS = ["sqlite", "mongomock", "mongodb"]
TIMEOUT = 2.0


@asynccontextmanager
async def open_backend(name: str, tmp_path: Path) -> AsyncIterator[EventStore]:
    store: EventStore
    if name == "sqlite":
        store = await SqliteEventStore.open(str(tmp_path / "events.db"), TIMEOUT)
        try:
            yield store
        finally:
            await store.close()
    elif name == "mongomock":
        from mongomock_motor import AsyncMongoMockClient

        fake: Any = AsyncMongoMockClient(tz_aware=True)
        yield MongoEventStore(fake["eventapi"]["events"], TIMEOUT)
    elif name == "mongodb":
        if not MONGODB_URL:
            pytest.skip("set EVENTAPI_TEST_MONGODB_URL to run against a real MongoDB server")
        from pymongo import AsyncMongoClient

        db_name = f"eventapi_test_{uuid.uuid4().hex[:12]}"
        real: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            MONGODB_URL, tz_aware=True, serverSelectionTimeoutMS=2000
        )
        try:
            yield MongoEventStore(real[db_name]["events"], TIMEOUT)
        finally:
            await real.drop_database(db_name)
            await real.close()
    else:
        raise ValueError(name)


@asynccontextmanager
async def two_handles(name: str, tmp_path: Path) -> AsyncIterator[tuple[EventStore, EventStore]]:
    """Two stores on one database, each with its own connections, as two server processes
    (or a process and its restart) have."""
    if name == "sqlite":
        path = str(tmp_path / "shared.db")
        one = await SqliteEventStore.open(path, TIMEOUT)
        two = await SqliteEventStore.open(path, TIMEOUT)
        try:
            yield one, two
        finally:
            await one.close()
            await two.close()
    elif name == "mongomock":
        from mongomock_motor import AsyncMongoMockClient

        fake: Any = AsyncMongoMockClient(tz_aware=True)
        collection = fake["eventapi"]["events"]
        yield MongoEventStore(collection, TIMEOUT), MongoEventStore(collection, TIMEOUT)
    else:
        pytest.skip("two handles are built for the in-process backends")
