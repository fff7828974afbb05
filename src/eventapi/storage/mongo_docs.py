"""An event as the MongoDB store's document, and a list query as its filter.

Like SQLite's columns (sqlite_rows.py): ``date``/``end``/``until`` are places on the UTC
timeline (a floating time as if UTC), ``date_naive``/``end_naive`` say a value had no
offset, ``date_wall``/``end_wall`` keep wall-clock time in the event's zone as sent. A
recurring event keeps its occurrences (``occurrences``: ``s`` start, ``e`` stop; at most
recurrence.MAX_OCCURRENCES, well within a document's 16 MB). Casefolded companions
(``*_key``): MongoDB's case-insensitive regex compares letter by letter ("ß" never matches
"ss"); matching casefolded text keeps filters identical to SQLite's.

Documents written by the release before these fields, or by one of its processes during a
rolling upgrade, lack them: absent reads as null, and ``status`` as ``scheduled``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from eventapi.events import dates, timing
from eventapi.events.keyset import Position, instant_text, text_instant
from eventapi.events.schemas import EventFields, EventQuery, EventRead, occurrence_of

Document = dict[str, Any]

_SEARCHED = ("title", "description", "location")
_KEYED = (*_SEARCHED, "organizer")


def _wall(value: datetime | None, zone: str | None) -> str | None:
    if value is None or value.tzinfo is not None or zone is None:
        return None
    return value.isoformat(timespec="milliseconds")


def fields_to_doc(event: EventFields | Mapping[str, Any]) -> Document:
    """An event's fields (all of them) -> its document, with every companion field."""
    fields: Mapping[str, Any] = event
    zone = fields["timezone"]
    date, end = fields["date"], fields["end"]
    doc: Document = {name: fields[name] for name in ("title", "timezone", "status")}
    doc.update(
        date=timing.position(date, zone),
        date_naive=date.tzinfo is None,
        date_wall=_wall(date, zone),
        end=None if end is None else timing.position(end, zone),
        end_naive=None if end is None else end.tzinfo is None,
        end_wall=_wall(end, zone),
        category=fields["category"],
        category_key=_folded(fields["category"]),
        recurrence=fields["recurrence"],
        exdates=None
        if fields["exdates"] is None
        else [dates.format_iso(d) for d in fields["exdates"]],
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
    )
    for name in _KEYED:
        doc[name] = fields[name]
        doc[f"{name}_key"] = _folded(fields[name])
    # Set (null) even when they do not apply: a write replaces what the event had.
    doc["until"] = doc["occurrences"] = None
    if end is not None or fields["recurrence"] is not None:
        found = timing.occurrences(timing.Fields.of(fields))
        doc["until"] = found[-1].stop
        if fields["recurrence"] is not None:
            doc["occurrences"] = [{"s": o.start, "e": o.stop} for o in found]
    return doc


def longest_span(doc: Document) -> int:
    """The span of the event ``doc`` in ms, rounded up (0: a point in time)."""
    if doc.get("until") is None:
        return 0
    return int((doc["until"] - doc["date"]) / timedelta(milliseconds=1)) + 1000


def _folded(text: str | None) -> str | None:
    return None if text is None else text.casefold()


def _value(moment: datetime, naive: bool | None, wall: str | None) -> datetime:
    if wall is not None:
        return datetime.fromisoformat(wall)
    return dates.from_instant(moment, bool(naive))


def doc_to_event(doc: Document) -> EventRead:
    end = doc.get("end")
    return EventRead(
        id=str(doc["_id"]),
        title=doc["title"],
        description=doc.get("description"),
        date=_value(doc["date"], doc.get("date_naive"), doc.get("date_wall")),
        location=doc.get("location"),
        category=doc.get("category"),
        organizer=doc.get("organizer"),
        end=None if end is None else _value(end, doc.get("end_naive"), doc.get("end_wall")),
        timezone=doc.get("timezone"),
        status=doc.get("status") or "scheduled",
        recurrence=doc.get("recurrence"),
        exdates=doc.get("exdates"),
        created_at=doc.get("created_at"),
        updated_at=doc.get("updated_at"),
    )


def _low(query: EventQuery, span: timedelta) -> datetime:
    assert query.date_from is not None
    try:
        return dates.instant(query.date_from) - span
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _overlap(query: EventQuery, span: timedelta, start: str, stop: str) -> list[Document]:
    """Conditions that what starts at field ``start`` and ends at ``stop`` (absent: at its
    start) overlaps the window; see sqlite_query.py for why the start is bounded below."""
    conditions: list[Document] = []
    bounds: Document = {}
    if query.date_from is not None:
        begin = dates.instant(query.date_from)
        bounds["$gte"] = _low(query, span)
        conditions.append({"$or": [{start: {"$gte": begin}}, {stop: {"$gte": begin}}]})
    if query.date_to is not None:
        bounds["$lte"] = dates.instant(query.date_to)
    if bounds:
        conditions.insert(0, {start: bounds})
    return conditions


def filters(query: EventQuery) -> list[Document]:
    """Every condition of ``query`` but the window. Every value is a validated scalar placed
    under an operator we chose, so nothing a client sends can become an operator; q is
    regex-escaped."""
    conditions: list[Document] = []
    if query.category:
        conditions.append({"category_key": {"$in": sorted({c.casefold() for c in query.category})}})
    if query.organizer is not None:
        conditions.append({"organizer_key": query.organizer.casefold()})
    if query.status:
        wanted: list[str | None] = [*sorted(set(query.status))]
        if "scheduled" in wanted:
            wanted.append(None)  # absent: a document of the release before status
        conditions.append({"status": {"$in": wanted}})
    if query.q is not None:
        pattern = {"$regex": re.escape(query.q.casefold())}
        conditions.append({"$or": [{f"{name}_key": pattern} for name in _SEARCHED]})
    return conditions


def _all(conditions: list[Document]) -> Document:
    return {"$and": conditions} if conditions else {}


def both(*filters: Document) -> Document:
    """Every one of ``filters`` (an empty one: every document)."""
    return _all([flt for flt in filters if flt])


def event_filter(query: EventQuery, span: timedelta) -> Document:
    """The events (as themselves, not expanded) ``query`` selects."""
    conditions = filters(query)
    if query.windowed():
        conditions += _overlap(query, span, "date", "until")
        occurrence = _all(_overlap(query, span, "s", "e"))
        conditions.append(
            {"$or": [{"recurrence": None}, {"occurrences": {"$elemMatch": occurrence}}]}
        )
    return _all(conditions)


def single_filter(query: EventQuery, span: timedelta) -> Document:
    """In an expanded page: the events that do not recur."""
    return _all([*filters(query), {"recurrence": None}, *_overlap(query, span, "date", "until")])


def occurrence_pipeline(query: EventQuery, span: timedelta) -> list[Document]:
    """In an expanded page: each occurrence of a recurring event, as its document with
    ``occurrences`` replaced by that one occurrence."""
    window = _overlap(query, span, "occurrences.s", "occurrences.e")
    return [
        {"$match": _all([*filters(query), {"recurrence": {"$ne": None}}])},
        {"$unwind": "$occurrences"},
        {"$match": _all(window)},
    ]


def occurrence_from(doc: Document) -> EventRead:
    """A document of occurrence_pipeline as the occurrence it stands for."""
    start: datetime = doc["occurrences"]["s"]
    return occurrence_of(doc_to_event(doc), start.astimezone(UTC))


# The field of each sort's value (its ties broken by _id).
_KEY_FIELDS = {"date": "date", "title": "title", "updated": "updated_at"}


def _beyond(parts: Sequence[tuple[str, Any]], descending: bool, nullable: bool) -> Document:
    """The documents after the values of ``parts`` ((field, value), in the order's fields,
    every one ascending or every one descending); only the first may be null (``nullable``),
    and null sorts first, as in sqlite_query._beyond. The first field is bounded on its own
    ($gte/$lte the value), so that an index on it starts there; the rest only settles
    the ties."""
    strictly, inclusive = ("$lt", "$lte") if descending else ("$gt", "$gte")
    (first, value), rest = parts[0], parts[1:]
    # After on the rest, the first being equal: lexicographic.
    ties: Document = {
        "$or": [{**dict(rest[:n]), name: {strictly: v}} for n, (name, v) in enumerate(rest)]
    }
    if value is None:
        same: Document = {"$and": [{first: None}, ties]}
        return same if descending else {"$or": [same, {first: {"$ne": None}}]}
    bounded = {"$and": [{first: {inclusive: value}}, {"$or": [{first: {strictly: value}}, ties]}]}
    return {"$or": [bounded, {first: None}]} if descending and nullable else bounded


def after_filter(query: EventQuery, after: Position, start: str | None = None) -> Document:
    """The documents that come after ``after`` in the order of ``query``: by (sort value,
    _id); on an expanded page (``start``: the field holding a row's start) by (start, _id)
    for the date sort, else by (sort value, _id, start)."""
    sort = query.sort.removeprefix("-")
    field = _KEY_FIELDS[sort]
    key: Any = after.key if sort == "title" or after.key is None else text_instant(after.key)
    parts: list[tuple[str, Any]] = [(field, key), ("_id", ObjectId(after.id))]
    if start is not None:
        assert after.start is not None  # cursors.decode: an expanded page's cursor has one
        begins = text_instant(after.start)
        parts = [(start, begins), parts[1]] if sort == "date" else [*parts, (start, begins)]
    return _beyond(parts, query.sort.startswith("-"), sort == "updated")


def position_of(query: EventQuery, doc: Document, start: datetime | None = None) -> Position:
    """Where ``doc`` sits in the order of ``query`` (``start``: an expanded page's row's)."""
    sort = query.sort.removeprefix("-")
    value = doc.get(_KEY_FIELDS[sort])
    key = value if value is None or isinstance(value, str) else instant_text(value)
    if start is None:
        return Position(key, str(doc["_id"]))
    begins = instant_text(start)
    return Position(begins if sort == "date" else key, str(doc["_id"]), begins)
