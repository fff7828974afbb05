"""An event as the SQLite store's columns, and back.

The timeline columns (``date_utc``, ``end_utc``, ``until_utc``, the occurrences) hold
positions on the UTC timeline as fixed-width ISO 8601 text, which sorts as text; a floating
time is placed there as if it were UTC (events/timing.py). What the client sent is kept
beside them: ``date_naive``/``end_naive`` say a value had no offset, and ``date_wall``/
``end_wall`` hold wall-clock time in the event's zone as sent, so a later change of the
zone's rules in the tz database never changes what the event says.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from eventapi.events import dates, timing
from eventapi.events.schemas import EventFields, EventRead

COLUMNS = (
    "id", "title", "description", "date_utc", "date_naive", "date_wall", "location",
    "category", "category_key", "organizer", "organizer_key", "end_utc", "end_naive",
    "end_wall", "timezone",
    "status", "recurrence", "exdates", "created_at", "updated_at", "until_utc",
)  # fmt: skip
SELECTED = ", ".join(COLUMNS)


def utc_text(moment: datetime) -> str:
    """An aware instant (or a naive one meaning UTC) as its column text."""
    return dates.instant(moment).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _value(position: str, naive: int, wall: str | None) -> datetime:
    """A date or end as sent: wall-clock time in the zone, floating, or an instant."""
    if wall is not None:
        return datetime.fromisoformat(wall)
    moment = datetime.fromisoformat(position)  # the column's text has no offset
    return moment if naive else moment.replace(tzinfo=UTC)


def _timeline(
    value: datetime | None, zone: str | None
) -> tuple[str | None, int | None, str | None]:
    """(position, naive, wall) columns of a date or end."""
    if value is None:
        return None, None, None
    naive = value.tzinfo is None
    wall = value.isoformat(timespec="milliseconds") if naive and zone is not None else None
    return utc_text(timing.position(value, zone)), int(naive), wall


def values(event: EventFields) -> dict[str, Any]:
    """Every column of ``event`` (its id included) but ``version``."""
    zone = event["timezone"]
    date_utc, date_naive, date_wall = _timeline(event["date"], zone)
    end_utc, end_naive, end_wall = _timeline(event["end"], zone)
    category = event["category"]
    exdates = event["exdates"]
    spans = event["end"] is not None or event["recurrence"] is not None
    return {
        "id": event["id"],
        "title": event["title"],
        "description": event["description"],
        "date_utc": date_utc,
        "date_naive": date_naive,
        "date_wall": date_wall,
        "location": event["location"],
        "category": category,
        "category_key": None if category is None else category.casefold(),
        "organizer": event["organizer"],
        "organizer_key": None if event["organizer"] is None else event["organizer"].casefold(),
        "end_utc": end_utc,
        "end_naive": end_naive,
        "end_wall": end_wall,
        "timezone": zone,
        "status": event["status"],
        "recurrence": event["recurrence"],
        "exdates": None if exdates is None else json.dumps([dates.format_iso(d) for d in exdates]),
        "created_at": None if event["created_at"] is None else utc_text(event["created_at"]),
        "updated_at": None if event["updated_at"] is None else utc_text(event["updated_at"]),
        # Only an event that lasts, or recurs, has a span beyond its date.
        "until_utc": utc_text(timing.span_end(timing.Fields.of(event))) if spans else None,
    }


def occurrence_rows(event: EventFields) -> Iterator[tuple[str, str, str]]:
    """(event_id, start_utc, stop_utc) of each occurrence of a recurring event; none for
    another (its one occurrence is its own row)."""
    if event["recurrence"] is None:
        return
    for occurrence in timing.occurrences(timing.Fields.of(event)):
        yield event["id"], utc_text(occurrence.start), utc_text(occurrence.stop)


def to_event(row: sqlite3.Row | Mapping[str, Any]) -> EventRead:
    end = None
    if row["end_utc"] is not None:
        end = _value(row["end_utc"], row["end_naive"], row["end_wall"])
    exdates = row["exdates"]
    return EventRead(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        date=_value(row["date_utc"], row["date_naive"], row["date_wall"]),
        location=row["location"],
        category=row["category"],
        organizer=row["organizer"],
        end=end,
        timezone=row["timezone"],
        status=row["status"],
        recurrence=row["recurrence"],
        exdates=None if exdates is None else json.loads(exdates),
        created_at=_moment(row["created_at"]),
        updated_at=_moment(row["updated_at"]),
    )
