"""MongoDB event store on PyMongo's native async API (AsyncMongoClient).

Every event document carries a ``version``: the seq of the intent of its last write, set
by the write itself, so a conditional write is one atomic single-document operation
filtered on it (``find_one_and_update`` / ``delete_one``). One that finds the event at
another version writes nothing but leaves its intent: one needless invalidation.

The change log is the ``changes`` collection beside ``events``. MongoDB would need a
multi-document transaction (and so a replica set) to commit a record with its write, so
each write records an *intent* first and then makes the change: a writer killed between
the two leaves an intent for a change that never happened, which costs one needless
invalidation, never a lost one. Seqs are allocated by inserting ``_id = last + 1`` and
retrying on a duplicate, so a record exists only once every lower seq does.

Idempotency-Key records are the ``idempotency`` collection, ``_id`` = scope/key (unique by
construction, no index needed). Without a transaction, a create with a key goes in three
steps: insert the record "in flight" with the id the event will have (a duplicate _id: the
key is taken), insert the event under that id, mark the record done with the event as
created. A retry finding the record in flight gets IdempotencyKeyInFlight, until the store
timeout and SETTLE_MARGIN have passed since it was written: the first attempt has then
surely ended, and the retry takes the record over and finishes it with the same event id,
so an event the first attempt did insert is not created twice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo import (
    ASCENDING,
    DESCENDING,
    AsyncMongoClient,
    ReadPreference,
    ReturnDocument,
    WriteConcern,
)
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from eventapi.changes import Change, ChangeBatch
from eventapi.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from eventapi.events import dates
from eventapi.events.schemas import (
    EVENT_FIELDS,
    EventCreate,
    EventFields,
    EventPage,
    EventQuery,
    EventRead,
)
from eventapi.events.store import (
    IDEMPOTENCY_TTL,
    Backend,
    Claim,
    Saved,
    VersionConflict,
    Versioned,
)
from eventapi.storage.guarded import guarded

log = logging.getLogger("eventapi.storage")

Document = dict[str, Any]

DUPLICATE_KEY = 11000
# The log keeps at least this many records; a relay further behind retires everything.
KEEP_CHANGES = 10_000
_PRUNE_EVERY = 1_000
# An intent settles once its write has surely finished or failed: the store timeout bounds
# the write; the margin covers clock differences between the app servers.
SETTLE_MARGIN = 1.0

_INDEXES: list[list[tuple[str, int]]] = [
    [("date", ASCENDING), ("_id", ASCENDING)],
    [("title", ASCENDING), ("_id", ASCENDING)],
    [("category_key", ASCENDING), ("date", ASCENDING), ("_id", ASCENDING)],
    [("category_key", ASCENDING), ("title", ASCENDING), ("_id", ASCENDING)],
]
_SORT = {
    "date": [("date", ASCENDING), ("_id", ASCENDING)],
    "-date": [("date", DESCENDING), ("_id", DESCENDING)],
    "title": [("title", ASCENDING), ("_id", ASCENDING)],
    "-title": [("title", DESCENDING), ("_id", DESCENDING)],
}


# Casefolded companions: MongoDB's case-insensitive regex compares letter by letter
# ("ß" never matches "ss"); matching casefolded text keeps q identical to SQLite's.
_SEARCHED = ("title", "description", "location")


def _fields_to_doc(fields: Mapping[str, Any]) -> Document:
    """Domain fields -> document fields (date, category and searched text get companions)."""
    doc: Document = {}
    for name, value in fields.items():
        if name == "date":
            doc["date"] = dates.instant(value)
            doc["date_naive"] = value.tzinfo is None
        elif name == "category":
            doc["category"] = value
            doc["category_key"] = value.casefold() if value is not None else None
        else:
            doc[name] = value
            if name in _SEARCHED:
                doc[f"{name}_key"] = value.casefold() if value is not None else None
    return doc


def _doc_to_event(doc: Document) -> EventRead:
    return EventRead(
        id=str(doc["_id"]),
        title=doc["title"],
        description=doc.get("description"),
        date=dates.from_instant(doc["date"], bool(doc.get("date_naive"))),
        location=doc.get("location"),
        category=doc.get("category"),
        organizer=doc.get("organizer"),
    )


def _versioned(doc: Document) -> Versioned:
    # A document written before versions were kept has none: version 0.
    return Versioned(_doc_to_event(doc), int(doc.get("version") or 0))


def _at_version(event_id: str, expected_version: int | None) -> Document:
    """The filter of a (conditional) write: the event, at ``expected_version`` if given."""
    flt: Document = {"_id": ObjectId(event_id)}
    if expected_version == 0:
        flt["version"] = {"$in": [0, None]}  # None also matches a missing field
    elif expected_version is not None:
        flt["version"] = expected_version
    return flt


def _filter(query: EventQuery) -> Document:
    # Every value is a validated scalar placed under an operator we chose, so nothing a
    # client sends can become an operator; q is regex-escaped.
    flt: Document = {}
    if query.category is not None:
        flt["category_key"] = query.category.casefold()
    span: Document = {}
    if query.date_from is not None:
        span["$gte"] = dates.instant(query.date_from)
    if query.date_to is not None:
        span["$lte"] = dates.instant(query.date_to)
    if span:
        flt["date"] = span
    if query.q is not None:
        pattern = {"$regex": re.escape(query.q.casefold())}
        flt["$or"] = [{f"{name}_key": pattern} for name in _SEARCHED]
    return flt


class MongoEventStore:
    """Works on any collection with PyMongo's async collection API.

    Production passes an AsyncMongoClient's collection; the tests pass mongomock-motor's.
    """

    backend: Backend = "mongodb"

    def __init__(self, collection: Any, timeout: float, client: Any = None) -> None:
        self._events = collection
        self._changes = collection.database["changes"]
        self._keys = collection.database["idempotency"]
        self._timeout = timeout
        self._client = client
        self._indexed = False

    @classmethod
    async def open(cls, url: str, timeout: float) -> MongoEventStore:
        ms = int(timeout * 1000)
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            timeoutMS=ms,
        )
        # Whatever the URL says: an acknowledged write survives a failover (majority), and
        # a read sees every acknowledged write (the primary; a secondary may lag), which
        # the cache's never-stale promise rests on.
        database = client.get_default_database(
            default="eventapi",
            write_concern=WriteConcern("majority"),
            read_preference=ReadPreference.PRIMARY,
        )
        store = cls(database["events"], timeout, client)
        try:
            await store._ensure_indexes()
        except Exception:
            log.warning("mongodb not reachable at start-up; will retry on first request")
        return store

    def _guard(self, what: str) -> Any:
        return guarded(self._timeout, (PyMongoError,), f"mongodb {what}")

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        async with self._guard("create_index"):
            for keys in _INDEXES:
                await self._events.create_index(keys)
            await self._changes.create_index([("at", ASCENDING)])
            await self._keys.create_index([("created_at", ASCENDING)])
        self._indexed = True

    async def get(self, event_id: str) -> EventRead | None:
        async with self._guard("get"):
            doc = await self._events.find_one({"_id": ObjectId(event_id)})
        return _doc_to_event(doc) if doc else None

    async def get_versioned(self, event_id: str) -> Versioned | None:
        async with self._guard("get"):
            doc = await self._events.find_one({"_id": ObjectId(event_id)})
        return _versioned(doc) if doc else None

    async def _conflict_or_absent(self, event_id: str) -> None:
        """After a conditional write matched nothing: VersionConflict if the event exists
        (at another version: it is read as it is now), else return (it is absent)."""
        current = await self.get_versioned(event_id)
        if current is not None:
            raise VersionConflict(current)

    async def list(self, query: EventQuery) -> EventPage:
        await self._ensure_indexes()
        flt = _filter(query)
        async with self._guard("list"):
            total = await self._events.count_documents(flt)
            cursor = (
                self._events.find(flt).sort(_SORT[query.sort]).skip(query.offset).limit(query.limit)
            )
            docs = [doc async for doc in cursor]
        return EventPage(items=[_doc_to_event(d) for d in docs], total=int(total))

    async def _intent(self, event_id: str | None) -> int:
        """Record a change before making it; returns its seq."""
        record: Document = {"event_id": event_id}
        while True:
            last = await self._changes.find_one(
                {}, sort=[("_id", DESCENDING)], projection={"_id": 1}
            )
            seq = (int(last["_id"]) if last else 0) + 1
            record.update(_id=seq, at=time.time())
            try:
                await self._changes.insert_one(record)
                break
            except DuplicateKeyError:
                continue  # another writer took it: look again at the newest record
        if seq % _PRUNE_EVERY == 0:
            await self._changes.delete_many({"_id": {"$lte": seq - KEEP_CHANGES}})
        return seq

    async def create(self, event: EventCreate) -> Saved:
        doc = {"_id": ObjectId(), **_fields_to_doc(event.model_dump())}
        async with self._guard("insert"):
            seq = await self._intent(str(doc["_id"]))
            await self._events.insert_one({**doc, "version": seq})
        return Saved(EventRead(id=str(doc["_id"]), **event.model_dump()), seq)

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        record_id = f"{claim.scope}/{claim.key}"
        fields = _fields_to_doc(event.model_dump())
        async with self._guard("insert"):
            event_id = await self._claim(record_id, claim)
            if isinstance(event_id, EventRead):
                return Saved(event_id, 0, replayed=True)
            seq = await self._intent(str(event_id))
            try:
                await self._events.insert_one({"_id": event_id, **fields, "version": seq})
            except DuplicateKeyError:
                # A taken-over attempt inserted it before it died (from the same body):
                # that one is the event.
                await self._events.update_one(
                    {"_id": event_id}, {"$set": {**fields, "version": seq}}
                )
            created = EventRead(id=str(event_id), **event.model_dump())
            await self._keys.update_one(
                {"_id": record_id},
                {"$set": {"state": "done", "response": created.model_dump_json()}},
            )
            if seq % _PRUNE_EVERY == 0:
                await self._keys.delete_many({"created_at": {"$lt": claim.at - IDEMPOTENCY_TTL}})
        return Saved(created, seq)

    async def _claim(self, record_id: str, claim: Claim) -> ObjectId | EventRead:
        """Take the key: the id the new event gets, or the event as an earlier request with
        the key created it. Raises IdempotencyKeyReused or IdempotencyKeyInFlight."""
        settled_before = claim.at - self._timeout - SETTLE_MARGIN
        # An expired record is forgotten (the periodic prune may not have come yet).
        await self._keys.delete_one(
            {"_id": record_id, "created_at": {"$lt": claim.at - IDEMPOTENCY_TTL}}
        )
        while True:
            event_id = ObjectId()
            record = {
                "_id": record_id,
                "fingerprint": claim.fingerprint,
                "state": "in-flight",
                "event_id": event_id,
                "created_at": claim.at,
            }
            try:
                await self._keys.insert_one(record)
                return event_id
            except DuplicateKeyError:
                found = await self._keys.find_one({"_id": record_id})
            if found is None:
                continue  # expired and deleted in between: try again
            if found["fingerprint"] != claim.fingerprint:
                raise IdempotencyKeyReused()
            if found["state"] == "done":
                return EventRead.model_validate_json(found["response"])
            if found["created_at"] >= settled_before:
                raise IdempotencyKeyInFlight()
            # The attempt that wrote it has surely ended: take the record over (once).
            taken = await self._keys.find_one_and_update(
                {"_id": record_id, "state": "in-flight", "created_at": found["created_at"]},
                {"$set": {"created_at": claim.at}},
            )
            if taken is not None:
                owned: ObjectId = taken["event_id"]
                return owned
            # Another retry took it over (or it got done) first: look again.

    async def update(
        self, event_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Saved | None:
        if not changes:
            current = await self.get_versioned(event_id)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(current)
            return Saved(current.event, 0)
        async with self._guard("update"):
            seq = await self._intent(event_id)
            doc = await self._events.find_one_and_update(
                _at_version(event_id, expected_version),
                {"$set": {**_fields_to_doc(changes), "version": seq}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is None and expected_version is not None:
            await self._conflict_or_absent(event_id)
        return Saved(_doc_to_event(doc), seq) if doc else None

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        async with self._guard("delete"):
            seq = await self._intent(event_id)
            result = await self._events.delete_one(_at_version(event_id, expected_version))
        if not result.deleted_count and expected_version is not None:
            await self._conflict_or_absent(event_id)
        return seq if result.deleted_count else None

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        settled_before = time.time() - self._timeout - SETTLE_MARGIN
        async with self._guard("changes"):
            docs = [
                doc
                async for doc in self._changes.find({"_id": {"$gt": after}})
                .sort("_id", ASCENDING)
                .limit(limit)
            ]
            newest = await self._changes.find_one({}, sort=[("_id", DESCENDING)])
            oldest = await self._changes.find_one({}, sort=[("_id", ASCENDING)])
            unsettled = await self._changes.find_one(
                {"at": {"$gte": settled_before}}, sort=[("_id", ASCENDING)]
            )
        newest_seq = int(newest["_id"]) if newest else 0
        head = int(unsettled["_id"]) - 1 if unsettled else newest_seq
        first_kept = int(oldest["_id"]) if oldest else newest_seq + 1
        changes = [Change(int(d["_id"]), d["event_id"]) for d in docs]
        return ChangeBatch(changes, head, gap=first_kept > after + 1)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        if not events:
            return 0
        await self._ensure_indexes()
        docs = [
            {"_id": ObjectId(e.id), **_fields_to_doc(e.model_dump(include=set(EVENT_FIELDS)))}
            for e in events
        ]
        async with self._guard("bulk insert"):
            try:
                seq = await self._intent(None)
                for doc in docs:
                    doc["version"] = seq
                await self._events.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                # Duplicate ids (code 11000) are the point: existing events stay as they are.
                errors = exc.details.get("writeErrors", [])
                if any(err.get("code") != DUPLICATE_KEY for err in errors):
                    raise
                return int(exc.details.get("nInserted", 0))
        return len(docs)

    async def load_new(self, batches: Iterable[Sequence[EventFields]]) -> int | None:
        # No write of a million documents is one transaction here (MongoDB caps a
        # transaction's size and time): the importer's batches, each with its change record.
        return None

    async def scan(self, after: str | None, limit: int) -> Sequence[EventRead]:
        # ObjectIds order as their lower-case hex does: the same order as SQLite's.
        flt: Document = {} if after is None else {"_id": {"$gt": ObjectId(after)}}
        async with self._guard("scan"):
            cursor = self._events.find(flt).sort("_id", ASCENDING).limit(limit)
            docs = [doc async for doc in cursor]
        return [_doc_to_event(doc) for doc in docs]

    async def delete_all(self) -> int:
        async with self._guard("delete_all"):
            await self._intent(None)
            result = await self._events.delete_many({})
        return int(result.deleted_count)

    async def count(self) -> int:
        async with self._guard("count"):
            return int(await self._events.count_documents({}))

    async def ping(self) -> None:
        async with self._guard("ping"):
            await self._events.database.command("ping")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
