"""The date rule, shared by every backend.

Naive datetimes are kept naive (wall-clock time, returned exactly as sent); aware ones are
normalised to UTC. Both are truncated to milliseconds, the precision BSON stores, so SQLite
and MongoDB return identical values. For range queries and sorting a naive value is placed
on the timeline as if it were UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def normalise(value: datetime) -> datetime:
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(UTC)
    else:
        value = value.replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def require_text(value: Any) -> Any:
    # Pydantic would also take numbers (Unix time); the API promises ISO 8601 only.
    if isinstance(value, datetime | str):
        return value
    raise ValueError("must be an ISO 8601 date-time string")


def instant(value: datetime) -> datetime:
    """Position on the UTC timeline (naive counts as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_instant(moment: datetime, naive: bool) -> datetime:
    moment = instant(moment)
    return moment.replace(tzinfo=None) if naive else moment


def format_iso(value: datetime) -> str:
    spec = "milliseconds" if value.microsecond else "seconds"
    text = value.isoformat(timespec=spec)
    return text[:-6] + "Z" if text.endswith("+00:00") else text
