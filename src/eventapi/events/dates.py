"""The date rule, shared by every backend.

Naive datetimes are kept naive (wall-clock time, returned exactly as sent); aware ones are
normalised to UTC. Both are truncated to milliseconds, the precision BSON stores, so SQLite
and MongoDB return identical values. For range queries and sorting a naive value is placed
on the timeline as if it were UTC.

Input is ISO 8601 text only: pydantic alone would also read numbers, and strings of digits
("1700000000", "0.5", even "2025"), as Unix time. An aware value whose UTC instant falls
outside years 1-9999 (9999-12-31T23:59:59-00:01) cannot be represented and is refused,
like any other invalid date, instead of overflowing later.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

# Every ISO 8601 form pydantic reads starts with a four-digit year and a dash (YYYY-MM-DD);
# nothing it reads as Unix time does.
_ISO_START = re.compile(r"[0-9]{4}-")


def normalise(value: datetime) -> datetime:
    if value.microsecond % 1000 == 0 and (value.tzinfo is None or value.tzinfo is UTC):
        return value  # already in the form (every stored value read back: the hot path)
    if value.tzinfo is not None and value.utcoffset() is not None:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range: in UTC it must fall in years 1 to 9999") from None
    else:
        value = value.replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def require_text(value: Any) -> Any:
    # Pydantic would also take numbers and numeric strings (Unix time); the API promises
    # ISO 8601 only.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_START.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time string, such as 2025-12-01T10:00:00")


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


def format_utc(value: datetime) -> str:
    """An instant as the API writes the ones it computes: UTC, milliseconds, ``Z``."""
    if value.tzinfo is not UTC:
        value = instant(value)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def now() -> datetime:
    """The current instant, at the precision dates are kept at."""
    return normalise(datetime.now(UTC))


def after(previous: datetime | None) -> datetime:
    """The current instant, but later than ``previous`` (a millisecond at least): every
    write of an event moves its updated_at on, even two within one millisecond or under a
    clock that stepped back, so it orders the event's writes."""
    current = now()
    if previous is None or current > previous:
        return current
    return previous + timedelta(milliseconds=1)
