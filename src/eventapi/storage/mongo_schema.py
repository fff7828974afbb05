"""The MongoDB store's schema version, and the upgrade to it.

The version is the ``meta`` collection's ``schema`` document; a database without one was
written by a release before versions (version 1). A newer version is refused, never read.
The upgrade runs once however many processes start at once: one takes the ``schema``
document's claim (an atomic update that only a document with no live claim matches), the
others answer 503 until it is done. Every step is idempotent, so a process that dies
mid-way leaves work the next claimer (once the claim has expired) simply does again. Like
SQLite's, the upgrade only adds: a process of the previous release keeps working on the
upgraded database during a rolling upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pymongo.errors import DuplicateKeyError

from eventapi.errors import StoreUnavailable

SCHEMA_VERSION = 2
# How long a claim on the upgrade lasts: longer than the upgrade of a large database (about
# 30 s a million events, in batches of BATCH), after which another process may take it.
CLAIM_SECONDS = 600.0
BATCH = 1000


class NewerSchema(StoreUnavailable):
    """The database was written by a newer release: refused at start-up, not retried."""


def newer(found: int) -> NewerSchema:
    return NewerSchema(
        f"the MongoDB database has schema version {found}, written by a newer eventapi; "
        f"this release reads version {SCHEMA_VERSION} at most: upgrade eventapi"
    )


async def ensure(database: Any) -> None:
    """Make the database's schema this release's, or raise (NewerSchema, or
    StoreUnavailable while another process upgrades it)."""
    meta = database["meta"]
    found = await meta.find_one({"_id": "schema"})
    if found is not None and int(found["version"]) >= SCHEMA_VERSION:
        if int(found["version"]) > SCHEMA_VERSION:
            raise newer(int(found["version"]))
        return
    with contextlib.suppress(DuplicateKeyError):  # another process wrote it first
        await meta.insert_one({"_id": "schema", "version": 1, "claimed_until": 0.0})
    now = time.time()
    claimed = await meta.find_one_and_update(
        {"_id": "schema", "version": {"$lt": SCHEMA_VERSION}, "claimed_until": {"$lt": now}},
        {"$set": {"claimed_until": now + CLAIM_SECONDS}},
    )
    if claimed is None:
        again = await meta.find_one({"_id": "schema"})
        if again is None or int(again["version"]) < SCHEMA_VERSION:
            raise StoreUnavailable(
                "the database is being upgraded by another process; retry shortly"
            )
        if int(again["version"]) > SCHEMA_VERSION:
            raise newer(int(again["version"]))
        return
    await _calendar(database["events"])
    await meta.update_one(
        {"_id": "schema"},
        {
            "$set": {"version": SCHEMA_VERSION, "claimed_until": 0.0},
            "$push": {"upgrades": {"to": SCHEMA_VERSION, "at": time.time()}},
        },
    )


async def _calendar(events: Any) -> None:
    """Version 2: the organizer filter's casefolded companion, for events made before it
    (every other new field reads as absent: null, status scheduled)."""
    pending = {"organizer": {"$ne": None}, "organizer_key": {"$exists": False}}
    while True:
        docs = [doc async for doc in events.find(pending, {"organizer": 1}).limit(BATCH)]
        if not docs:
            return
        # One update each (casefold is Python's, not an aggregation operator's), a batch
        # at a time over the client's pool.
        await asyncio.gather(
            *(
                events.update_one(
                    {"_id": d["_id"]}, {"$set": {"organizer_key": d["organizer"].casefold()}}
                )
                for d in docs
            )
        )
