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
retrying on a duplicate, so a record exists only once every lower seq does. A write that
has finished marks its intent ``done``: the log's head (ChangeBatch.head) moves past an
intent as soon as its write is done, or once the store timeout says it surely ended.

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

import inspect
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
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

from eventapi.changes import DEFAULT_RETENTION, Change, ChangeBatch, Kind, Retention
from eventapi.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, StoreUnavailable
from eventapi.events import cursors, dates
from eventapi.events.keyset import Position
from eventapi.events.schemas import (
    EventCreate,
    EventFields,
    EventPage,
    EventQuery,
    EventRead,
    fields_of,
    merged,
)
from eventapi.events.store import (
    IDEMPOTENCY_TTL,
    Backend,
    Claim,
    Saved,
    VersionConflict,
    Versioned,
)
from eventapi.storage import mongo_schema
from eventapi.storage.guarded import guarded
from eventapi.storage.mongo_docs import (
    Document,
    after_filter,
    both,
    doc_to_event,
    event_filter,
    fields_to_doc,
    longest_span,
    occurrence_from,
    occurrence_pipeline,
    position_of,
    single_filter,
)

log = logging.getLogger("eventapi.storage")

DUPLICATE_KEY = 11000
# How often (every this many records) the log is pruned, and the batch of the bulk writes'
# records (one insert_many each).
_PRUNE_EVERY = 1_000
_RECORD_BATCH = 1_000
_Seqs = list[int]  # (inside the store class, ``list`` is its method)
# An intent settles once its write has surely finished or failed: the store timeout bounds
# the write; the margin covers clock differences between the app servers.
SETTLE_MARGIN = 1.0

_INDEXES: list[list[tuple[str, int]]] = [
    [("date", ASCENDING), ("_id", ASCENDING)],
    [("title", ASCENDING), ("_id", ASCENDING)],
    [("category_key", ASCENDING), ("date", ASCENDING), ("_id", ASCENDING)],
    [("category_key", ASCENDING), ("title", ASCENDING), ("_id", ASCENDING)],
    [("organizer_key", ASCENDING), ("date", ASCENDING), ("_id", ASCENDING)],
    [("status", ASCENDING), ("date", ASCENDING), ("_id", ASCENDING)],
    [("updated_at", ASCENDING), ("_id", ASCENDING)],
    [("occurrences.s", ASCENDING)],
]
_SORT = {
    "date": [("date", ASCENDING), ("_id", ASCENDING)],
    "-date": [("date", DESCENDING), ("_id", DESCENDING)],
    "title": [("title", ASCENDING), ("_id", ASCENDING)],
    "-title": [("title", DESCENDING), ("_id", DESCENDING)],
    "updated": [("updated_at", ASCENDING), ("_id", ASCENDING)],
    "-updated": [("updated_at", DESCENDING), ("_id", DESCENDING)],
}
# The order of the occurrences of an expanded page, in the aggregation and in the merge.
_OCCURRENCE_SORT = {
    "date": [("occurrences.s", ASCENDING), ("_id", ASCENDING)],
    "-date": [("occurrences.s", DESCENDING), ("_id", DESCENDING)],
    "title": [("title", ASCENDING), ("_id", ASCENDING), ("occurrences.s", ASCENDING)],
    "-title": [("title", DESCENDING), ("_id", DESCENDING), ("occurrences.s", DESCENDING)],
    "updated": [("updated_at", ASCENDING), ("_id", ASCENDING), ("occurrences.s", ASCENDING)],
    "-updated": [("updated_at", DESCENDING), ("_id", DESCENDING), ("occurrences.s", DESCENDING)],
}


def _merge_key(*fields: str) -> Any:
    """The order of an expanded page's rows (document, is an occurrence) by ``fields``, as
    MongoDB sorts them: ``start`` the occurrence's (or event's) start, nulls first."""

    def value(row: tuple[Document, bool], field: str) -> Any:
        doc, series = row
        if field == "start":
            return doc["occurrences"]["s"] if series else doc["date"]
        if field == "_id":
            return str(doc["_id"])  # ObjectIds order as their hex does
        found = doc.get(field)
        return (found is not None, "" if found is None else found)

    return lambda row: tuple(value(row, field) for field in fields)


# Every part of a descending sort is descending: the ascending key, reversed.
_EXPANDED_KEY = {
    "date": _merge_key("start", "_id"),
    "title": _merge_key("title", "_id", "start"),
    "updated": _merge_key("updated_at", "_id", "start"),
}
# A PATCH reads the event, checks it merged with the changes, and writes it only if it is
# still at the version read; another write in between makes it read again, this many times.
_MERGE_ATTEMPTS = 20


def _new(event_id: ObjectId, event: EventCreate) -> EventRead:
    """The event a create makes: stamped now."""
    now = dates.now()
    return EventRead(id=str(event_id), **event.model_dump(), created_at=now, updated_at=now)


def _versioned(doc: Document) -> Versioned:
    # A document written before versions were kept has none: version 0.
    return Versioned(doc_to_event(doc), int(doc.get("version") or 0))


def _at_version(event_id: str, expected_version: int | None) -> Document:
    """The filter of a (conditional) write: the event, at ``expected_version`` if given."""
    flt: Document = {"_id": ObjectId(event_id)}
    if expected_version == 0:
        flt["version"] = {"$in": [0, None]}  # None also matches a missing field
    elif expected_version is not None:
        flt["version"] = expected_version
    return flt


class MongoEventStore:
    """Works on any collection with PyMongo's async collection API.

    Production passes an AsyncMongoClient's collection; the tests pass mongomock-motor's.
    """

    backend: Backend = "mongodb"

    def __init__(
        self,
        collection: Any,
        timeout: float,
        client: Any = None,
        retention: Retention = DEFAULT_RETENTION,
    ) -> None:
        self._keep = retention
        self._events = collection
        self._changes = collection.database["changes"]
        self._keys = collection.database["idempotency"]
        self._meta = collection.database["meta"]
        self._timeout = timeout
        self._client = client
        self._indexed = False

    @classmethod
    async def open(
        cls, url: str, timeout: float, retention: Retention = DEFAULT_RETENTION
    ) -> MongoEventStore:
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
        store = cls(database["events"], timeout, client, retention)
        try:
            await store._ensure_indexes()
        except mongo_schema.NewerSchema:
            await client.close()
            raise
        except Exception:
            log.warning("mongodb not reachable at start-up; will retry on first request")
        return store

    def _guard(self, what: str) -> Any:
        return guarded(self._timeout, (PyMongoError,), f"mongodb {what}")

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        async with self._guard("create_index"):
            await mongo_schema.ensure(self._events.database)
            for keys in _INDEXES:
                await self._events.create_index(keys)
            await self._changes.create_index([("at", ASCENDING)])
            await self._keys.create_index([("created_at", ASCENDING)])
        self._indexed = True

    async def get(self, event_id: str) -> EventRead | None:
        async with self._guard("get"):
            doc = await self._events.find_one({"_id": ObjectId(event_id)})
        return doc_to_event(doc) if doc else None

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
        after = cursors.decode(query)
        await self._ensure_indexes()
        async with self._guard("list"):
            span = await self._longest() if query.windowed() else timedelta(0)
            if query.expand:
                return await self._expanded(query, span, after)
            flt = event_filter(query, span)
            total = await self._events.count_documents(flt)
            if after is None:
                found = self._events.find(flt).skip(query.offset).limit(query.limit)
            else:  # a seek past the cursor's position, one more to know if a page follows
                found = self._events.find(both(flt, after_filter(query, after))).limit(
                    query.limit + 1
                )
            docs = [doc async for doc in found.sort(_SORT[query.sort])]
        more = None if after is None else len(docs) > query.limit
        docs = docs[: query.limit]
        last = position_of(query, docs[-1]) if docs else None
        items = [doc_to_event(d) for d in docs]
        return EventPage(items=items, total=int(total), more=more, last=last)

    async def _aggregate(self, pipeline: Sequence[Document]) -> Any:
        """A cursor over ``pipeline``: PyMongo's async aggregate() is a coroutine that gives
        it; mongomock-motor's gives it at once."""
        cursor = self._events.aggregate(list(pipeline))
        return await cursor if inspect.isawaitable(cursor) else cursor

    async def _longest(self) -> timedelta:
        found = await self._meta.find_one({"_id": "longest"})
        return timedelta(milliseconds=0 if found is None else int(found["ms"]))

    async def _note_longest(self, doc: Document) -> None:
        """Before an event with a span is written: the longest span grows to cover it (a
        window query reads from date_from minus it; mongo_docs.py)."""
        if span := longest_span(doc):
            await self._meta.update_one({"_id": "longest"}, {"$max": {"ms": span}}, upsert=True)

    async def _expanded(
        self, query: EventQuery, span: timedelta, after: Position | None
    ) -> EventPage:
        """An expanded page: the events that do not recur and the occurrences of those that
        do, each read in the page's order up to its end, and merged. A page deep in a long
        window reads offset + limit of each; a cursor's page (after ``after``) limit + 1."""
        end = query.offset + query.limit if after is None else query.limit + 1
        key = _EXPANDED_KEY[query.sort.removeprefix("-")]
        single = single_filter(query, span)
        beyond: list[Document] = []
        read = single
        if after is not None:
            read = both(single, after_filter(query, after, "date"))
            beyond = [{"$match": after_filter(query, after, "occurrences.s")}]
        singles = self._events.find(read).sort(_SORT[query.sort]).limit(end)
        pipeline = occurrence_pipeline(query, span)
        occurrences = await self._aggregate(
            [
                *pipeline,
                *beyond,
                {"$sort": dict(_OCCURRENCE_SORT[query.sort])},
                {"$limit": end},
            ]
        )
        counted = await self._aggregate([*pipeline, {"$count": "n"}])
        rows = [(doc, False) async for doc in singles]
        rows += [(doc, True) async for doc in occurrences]
        counts = [doc["n"] async for doc in counted]
        total = await self._events.count_documents(single) + (counts[0] if counts else 0)
        rows.sort(key=key, reverse=query.sort.startswith("-"))
        page = rows[query.offset : end] if after is None else rows[: query.limit]
        more = None if after is None else len(rows) > query.limit
        items = [occurrence_from(d) if series else doc_to_event(d) for d, series in page]
        last = None
        if page:
            doc, series = page[-1]
            last = position_of(query, doc, doc["occurrences"]["s"] if series else doc["date"])
        return EventPage(items=items, total=int(total), more=more, last=last)

    async def _intent(self, event_id: str, kind: Kind) -> int:
        """Record a change before making it; returns its seq."""
        return (await self._intents([event_id], kind))[0]

    async def _intents(self, event_ids: Sequence[str], kind: Kind) -> _Seqs:
        """Record a change of each of ``event_ids`` before making them; their seqs, which
        rise in the given order (a block of them, unless another writer takes some)."""
        seqs: _Seqs = []
        while len(seqs) < len(event_ids):
            last = await self._changes.find_one(
                {}, sort=[("_id", DESCENDING)], projection={"_id": 1}
            )
            first = (int(last["_id"]) if last else 0) + 1
            now = time.time()
            records = [
                {"_id": first + i, "event_id": event_id, "kind": kind, "at": now}
                for i, event_id in enumerate(event_ids[len(seqs) :])
            ]
            try:
                await self._changes.insert_many(records, ordered=True)
                taken = len(records)
            except BulkWriteError as exc:
                # Another writer took a seq: the ones before it are ours; look again.
                if any(e.get("code") != DUPLICATE_KEY for e in exc.details["writeErrors"]):
                    raise
                taken = int(exc.details.get("nInserted", 0))
            seqs.extend(first + i for i in range(taken))
            if (first + taken - 1) // _PRUNE_EVERY > (first - 1) // _PRUNE_EVERY:
                await self._prune(first + taken - 1)
        return seqs

    async def _settle(self, seq: int) -> None:
        """Mark an intent done: its write has finished (applied or not: it can no longer
        apply), so the log's head may pass it now rather than after the store timeout."""
        await self._changes.update_one({"_id": seq}, {"$set": {"done": True}})

    async def _prune(self, head: int) -> None:
        cutoff = time.time() - self._keep.seconds
        young = await self._changes.find_one(
            {"at": {"$gte": cutoff}}, sort=[("_id", ASCENDING)], projection={"_id": 1}
        )
        upto = self._keep.prunable(head, int(young["_id"]) if young else None)
        await self._changes.delete_many({"_id": {"$lte": upto}})

    async def _head(self) -> int:
        """The newest seq up to which every intent is settled (done, or surely ended)."""
        settled_before = time.time() - self._timeout - SETTLE_MARGIN
        unsettled = await self._changes.find_one(
            {"at": {"$gte": settled_before}, "done": {"$ne": True}},
            sort=[("_id", ASCENDING)],
            projection={"_id": 1},
        )
        if unsettled is not None:
            return int(unsettled["_id"]) - 1
        newest = await self._changes.find_one({}, sort=[("_id", DESCENDING)], projection={"_id": 1})
        return int(newest["_id"]) if newest else 0

    async def head(self) -> int:
        async with self._guard("changes"):
            return await self._head()

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        if not event_ids:
            return {}
        async with self._guard("get"):
            ids = [ObjectId(event_id) for event_id in event_ids]
            docs = [doc async for doc in self._events.find({"_id": {"$in": ids}})]
        return {str(doc["_id"]): _versioned(doc) for doc in docs}

    async def create(self, event: EventCreate) -> Saved:
        created = _new(ObjectId(), event)
        doc = {"_id": ObjectId(created.id), **fields_to_doc(fields_of(created))}
        async with self._guard("insert"):
            await self._note_longest(doc)
            seq = await self._intent(created.id, "created")
            await self._events.insert_one({**doc, "version": seq})
            await self._settle(seq)
        return Saved(created, seq)

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        record_id = f"{claim.scope}/{claim.key}"
        async with self._guard("insert"):
            event_id = await self._claim(record_id, claim)
            if isinstance(event_id, EventRead):
                return Saved(event_id, 0, replayed=True)
            created = _new(event_id, event)
            fields = fields_to_doc(fields_of(created))
            await self._note_longest(fields)
            seq = await self._intent(str(event_id), "created")
            try:
                await self._events.insert_one({"_id": event_id, **fields, "version": seq})
            except DuplicateKeyError:
                # A taken-over attempt inserted it before it died (from the same body):
                # that one is the event.
                await self._events.update_one(
                    {"_id": event_id}, {"$set": {**fields, "version": seq}}
                )
            await self._keys.update_one(
                {"_id": record_id},
                {"$set": {"state": "done", "response": created.model_dump_json()}},
            )
            await self._settle(seq)
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
            for _ in range(_MERGE_ATTEMPTS):
                found = await self._events.find_one({"_id": ObjectId(event_id)})
                if found is None:
                    return None
                current = _versioned(found)
                if expected_version is not None and current.version != expected_version:
                    raise VersionConflict(current)
                event = merged(current.event, changes)
                fields: EventFields = {
                    **fields_of(current.event),
                    **event.model_dump(),  # type: ignore[typeddict-item]
                    "updated_at": dates.after(current.event.updated_at),
                }
                doc = fields_to_doc(fields)
                await self._note_longest(doc)
                seq = await self._intent(event_id, "updated")
                written = await self._events.find_one_and_update(
                    _at_version(event_id, current.version),
                    {"$set": {**doc, "version": seq}},
                    return_document=ReturnDocument.AFTER,
                )
                await self._settle(seq)
                if written is not None:
                    return Saved(doc_to_event(written), seq)
                # Written or deleted since it was read: read it again (an intent is left,
                # which costs one needless invalidation).
        raise StoreUnavailable("the event kept changing while it was being updated; retry")

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        async with self._guard("delete"):
            seq = await self._intent(event_id, "deleted")
            result = await self._events.delete_one(_at_version(event_id, expected_version))
            await self._settle(seq)
        if not result.deleted_count and expected_version is not None:
            await self._conflict_or_absent(event_id)
        return seq if result.deleted_count else None

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        async with self._guard("changes"):
            # The head first: a record it covers is already in the log when it is read.
            head = await self._head()
            docs = [
                doc
                async for doc in self._changes.find({"_id": {"$gt": after}})
                .sort("_id", ASCENDING)
                .limit(limit)
            ]
            oldest = await self._changes.find_one({}, sort=[("_id", ASCENDING)])
        first_kept = int(oldest["_id"]) if oldest else head + 1
        changes = [Change(int(d["_id"]), d["event_id"], d.get("kind")) for d in docs]
        return ChangeBatch(changes, head, gap=first_kept > after + 1)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        if not events:
            return 0
        await self._ensure_indexes()
        docs = [{"_id": ObjectId(e.id), **fields_to_doc(fields_of(e))} for e in events]
        async with self._guard("bulk insert"):
            try:
                await self._note_longest(max(docs, key=longest_span))
                # A record for each (one for an id that exists and is skipped, too: a
                # follower is told of an event that did not change, which it may be).
                seqs = await self._intents([e.id for e in events], "created")
                for doc, seq in zip(docs, seqs, strict=True):
                    doc["version"] = seq
                await self._events.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                # Duplicate ids (code 11000) are the point: existing events stay as they are.
                errors = exc.details.get("writeErrors", [])
                if any(err.get("code") != DUPLICATE_KEY for err in errors):
                    raise
                await self._changes.update_many({"_id": {"$in": seqs}}, {"$set": {"done": True}})
                return int(exc.details.get("nInserted", 0))
            await self._changes.update_many({"_id": {"$in": seqs}}, {"$set": {"done": True}})
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
        return [doc_to_event(doc) for doc in docs]

    async def delete_all(self) -> int:
        """Batch by batch, each with its records (a follower learns of every deletion)."""
        gone = 0
        while True:
            async with self._guard("delete_all"):
                cursor = self._events.find({}, projection={"_id": 1}).limit(_RECORD_BATCH)
                ids = [doc["_id"] async for doc in cursor]
                if not ids:
                    return gone
                seqs = await self._intents([str(i) for i in ids], "deleted")
                result = await self._events.delete_many({"_id": {"$in": ids}})
                await self._changes.update_many({"_id": {"$in": seqs}}, {"$set": {"done": True}})
            gone += int(result.deleted_count)

    async def count(self) -> int:
        async with self._guard("count"):
            return int(await self._events.count_documents({}))

    async def ping(self) -> None:
        async with self._guard("ping"):
            await self._events.database.command("ping")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
