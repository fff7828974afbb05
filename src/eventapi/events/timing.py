"""When an event happens: its start and end on the UTC timeline, and its occurrences.

Three kinds of date-time, as in RFC 5545 3.3.5:
- with an offset (sent as ``...Z`` or ``...+02:00``): an instant, kept in UTC;
- without one, in an event with a ``timezone``: wall-clock time there;
- without one, in an event with no ``timezone``: floating, the same wall-clock time
  wherever one is. It has no instant (``date_utc`` is null); for windows and sorting it is
  placed on the timeline as if it were UTC, as the API always did.

A recurring event's occurrences are computed on wall-clock time in its zone (recurrence.py),
so 18:00 stays 18:00 across daylight-saving changes, and then placed on the timeline; each
lasts what the first one lasts (RFC 5545 3.8.5.3: the exact duration of DTSTART to DTEND).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from eventapi.events import recurrence, zones


class Timed(Protocol):
    """The fields of an event that say when it happens."""

    @property
    def date(self) -> datetime: ...
    @property
    def end(self) -> datetime | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def recurrence(self) -> str | None: ...
    @property
    def exdates(self) -> list[datetime] | None: ...


@dataclass(frozen=True, slots=True)
class Fields:
    """The Timed fields of an event given as a mapping (the bulk paths' EventFields)."""

    date: datetime
    end: datetime | None
    timezone: str | None
    recurrence: str | None
    exdates: list[datetime] | None

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Fields:
        return cls(
            fields["date"],
            fields["end"],
            fields["timezone"],
            fields["recurrence"],
            fields["exdates"],
        )


def position(value: datetime, timezone: str | None) -> datetime:
    """Where ``value`` (a date or end of an event in ``timezone``) sits on the UTC timeline."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    if timezone is None:
        return value.replace(tzinfo=UTC)
    return zones.shifted_instant(value, timezone)


def known_instant(value: datetime, timezone: str | None) -> datetime | None:
    """The instant of ``value``, or None for a floating time."""
    if value.tzinfo is None and timezone is None:
        return None
    return position(value, timezone)


def check(event: Timed) -> None:
    """What the fields must agree on (ValueError otherwise, saying which field)."""
    tz = event.timezone
    if tz is not None:
        for name, value in (("date", event.date), ("end", event.end)):
            if value is not None and value.tzinfo is None:
                try:
                    zones.instant(value, tz)
                except zones.NonexistentTime as exc:
                    raise ValueError(f"{name}: {exc}") from None
    start = position(event.date, tz)
    if event.end is not None and position(event.end, tz) < start:
        raise ValueError("end: must not be before date")
    if event.exdates and event.recurrence is None:
        raise ValueError("exdates: only a recurring event (with a recurrence) has any")
    if event.recurrence is not None and not occurrences(event):
        raise ValueError(
            "recurrence: no occurrence (the rule gives none from date on, or exdates skip "
            "every one)"
        )


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence: ``date``/``end`` in the series' form (wall clock if its date is,
    else UTC), ``start``/``stop`` its place on the timeline."""

    date: datetime
    end: datetime | None
    start: datetime
    stop: datetime


def wall_start(event: Timed) -> datetime:
    """The series' DTSTART as wall-clock time, where its rule is applied."""
    date = event.date
    if date.tzinfo is None:
        return date
    if event.timezone is not None:
        return zones.wall_clock(date, event.timezone)
    return date.astimezone(UTC).replace(tzinfo=None)


def _length(event: Timed) -> timedelta:
    if event.end is None:
        return timedelta(0)
    return position(event.end, event.timezone) - position(event.date, event.timezone)


def occurrence_at(event: Timed, start: datetime) -> Occurrence:
    """The occurrence of ``event`` that starts at the instant ``start``. Its date is written
    as the series' is: an occurrence the rule put in a daylight-saving gap (02:30) is shown
    at the time it happens (03:30)."""
    stop = start + _length(event)
    date = _in_form_of(event.date, start, event.timezone)
    end = None if event.end is None else _in_form_of(event.end, stop, event.timezone)
    return Occurrence(date, end, start, stop)


def occurrences(event: Timed, *, limit: int = recurrence.MAX_OCCURRENCES) -> list[Occurrence]:
    """The occurrences of a recurring event (EXDATEs left out), at most ``limit``; of any
    other event, its one occurrence."""
    tz = event.timezone
    if event.recurrence is None:
        return [occurrence_at(event, position(event.date, tz))]

    def to_utc(wall: datetime) -> datetime:
        return position(wall, tz)

    rule = recurrence.parse_rule(event.recurrence)
    skipped = {position(value, tz) for value in event.exdates or ()}
    found: list[Occurrence] = []
    for wall in recurrence.expand(rule, wall_start(event), to_utc=to_utc, limit=limit):
        start = to_utc(wall)
        # A wall time in a gap moves on by the gap's length (RFC 5545 3.3.5) and may land on
        # the next occurrence: "duplicate instances are ignored" (3.8.5.3).
        if start not in skipped and (not found or start != found[-1].start):
            found.append(occurrence_at(event, start))
    return found


def _in_form_of(like: datetime, moment: datetime, timezone: str | None) -> datetime:
    """``moment`` written the way ``like`` is: an instant, or wall-clock time (in
    ``timezone``, or floating)."""
    if like.tzinfo is not None:
        return moment
    if timezone is not None:
        return zones.wall_clock(moment, timezone)
    return moment.replace(tzinfo=None)


def span_end(event: Timed) -> datetime:
    """Where the event's last occurrence ends on the timeline (its end, or its date)."""
    return occurrences(event)[-1].stop
