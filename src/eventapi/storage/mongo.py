"""MongoDB event store on PyMongo's native async API (AsyncMongoClient)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, PyMongoError

from eventapi.events import dates
from eventapi.events.schemas import EVENT_FIELDS, EventCreate, EventPage, EventQuery, EventRead
from eventapi.storage.base import Backend, guarded

log = logging.getLogger("eventapi.storage")

Document = dict[str, Any]

DUPLICATE_KEY = 11000

_INDEXES: list[list[tuple[str, int]]] = [
    [("date", ASCENDING), ("_id", ASCENDING)],
    [("title", ASCENDING), ("_id", ASCENDING)],
    [("category_key", ASCENDING), ("date", ASCENDING), ("_id", ASCENDING)],
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
        database = client.get_default_database(default="eventapi")
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
        self._indexed = True

    async def get(self, event_id: str) -> EventRead | None:
        async with self._guard("get"):
            doc = await self._events.find_one({"_id": ObjectId(event_id)})
        return _doc_to_event(doc) if doc else None

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

    async def create(self, event: EventCreate) -> EventRead:
        doc = _fields_to_doc(event.model_dump())
        async with self._guard("insert"):
            result = await self._events.insert_one(doc)
        return EventRead(id=str(result.inserted_id), **event.model_dump())

    async def update(self, event_id: str, changes: Mapping[str, Any]) -> EventRead | None:
        if not changes:
            return await self.get(event_id)
        async with self._guard("update"):
            doc = await self._events.find_one_and_update(
                {"_id": ObjectId(event_id)},
                {"$set": _fields_to_doc(changes)},
                return_document=ReturnDocument.AFTER,
            )
        return _doc_to_event(doc) if doc else None

    async def delete(self, event_id: str) -> bool:
        async with self._guard("delete"):
            result = await self._events.delete_one({"_id": ObjectId(event_id)})
        return bool(result.deleted_count)

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
                await self._events.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                # Duplicate ids (code 11000) are the point: existing events stay as they are.
                errors = exc.details.get("writeErrors", [])
                if any(err.get("code") != DUPLICATE_KEY for err in errors):
                    raise
                return int(exc.details.get("nInserted", 0))
        return len(docs)

    async def delete_all(self) -> int:
        async with self._guard("delete_all"):
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
