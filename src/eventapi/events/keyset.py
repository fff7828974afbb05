"""Where a list page ends, in its list's order: the keyset a cursor (events/cursors.py)
carries to the next page. Store-neutral: each store reads it from its own columns and seeks
past it (storage/sqlite_query.py, storage/mongo_docs.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# A place on the UTC timeline as the SQLite store's columns hold it: fixed-width ISO 8601
# with milliseconds and no offset, which sorts as text.
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}")


@dataclass(frozen=True, slots=True)
class Position:
    """The last item of a page, by the values its list is sorted on.

    ``key``: the sort's value: for date, the event's place on the timeline (an instant's
    text, see instant_text); for title, the title; for updated, updated_at's instant text,
    or None for an event written before it was kept. ``id``: the event's id (a series' for
    one of its occurrences), which breaks ties. ``start``: only on an expanded page, the
    occurrence's (or event's) start, which orders a series' occurrences; for the date sort
    it is ``key`` again.
    """

    key: str | None
    id: str
    start: str | None = None


def instant_text(moment: datetime) -> str:
    """An aware instant (naive: UTC) as its text: what SQLite's timeline columns hold."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds")


def is_instant_text(text: str) -> bool:
    if _INSTANT.fullmatch(text) is None:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def text_instant(text: str) -> datetime:
    """An instant's text (is_instant_text) as an aware datetime in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
