"""Events as an iCalendar (RFC 5545) calendar: ``calendar(events)`` gives the whole
VCALENDAR, UTF-8 with CRLF line ends and lines folded at 75 octets.

The output is a function of its input only (no current time, no host time zone database),
so that it can be cached and ETagged: DTSTAMP is the event's last write (updated_at, else
created_at, else 1970-01-01T00:00:00Z).

Times are written as events state them (timing.py): wall-clock time in the event's zone
(``TZID=``, with a VTIMEZONE built from the shipped tzdata: vtimezone.py), a UTC instant
(``Z``), or floating local time; a single time the zone passes twice goes in UTC (see
_moment). iCalendar has whole seconds only: fractions (events keep
milliseconds) are truncated. A recurring event's RRULE is written so that a client expands
exactly the occurrences timing.occurrences gives (at most 1,000): UNTIL in the form RFC
5545 requires (UTC unless DTSTART floats), interpreted as our expander does and checked by
expanding the rewritten rule again; a series cut at 1,000 occurrences, or without an end,
gets the UNTIL of its last occurrence; a DTSTART the rule does not match (RFC 5545 counts it
as an occurrence, our expander does not) is an EXDATE, and a COUNT then becomes an UNTIL."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from eventapi.events import dates, recurrence, timing, zones
from eventapi.events.schemas import EventRead
from eventapi.events.vtimezone import component, stamp

PRODID = "-//eventapi//eventapi//EN"
_NEVER_WRITTEN = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 5545 STATUS for a VEVENT is TENTATIVE, CONFIRMED or CANCELLED: a postponed event has
# no settled date yet (tentative); a rescheduled one has its new date, confirmed. Our own
# value goes beside it in X-EVENTAPI-STATUS.
STATUS = {
    "scheduled": "CONFIRMED",
    "postponed": "TENTATIVE",
    "rescheduled": "CONFIRMED",
    "cancelled": "CANCELLED",
}
# Controls iCalendar does not allow in a value (TAB does; LF is escaped, CR made LF).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Span = tuple[datetime, datetime]


def calendar(events: Sequence[tuple[EventRead, int]], name: str | None = None) -> bytes:
    """The VCALENDAR of ``events``: one VEVENT per (event, sequence), in the given order,
    after one VTIMEZONE per zone they use. ``sequence`` (the event's version: it rises with
    every change) is its SEQUENCE."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    if name is not None:
        lines.append(f"X-WR-CALNAME:{text(name)}")
    spans: dict[str, Span] = {}
    bodies: list[str] = []
    for event, sequence in events:
        body, span = _vevent(event, sequence)
        bodies += body
        if event.timezone is not None:
            known = spans.get(event.timezone, span)
            spans[event.timezone] = (min(known[0], span[0]), max(known[1], span[1]))
    for zone in sorted(spans):
        lines += component(zone, *spans[zone])
    return b"".join(fold(line) for line in [*lines, *bodies, "END:VCALENDAR"])


def _vevent(event: EventRead, sequence: int) -> tuple[list[str], Span]:
    if sequence < 0:
        raise ValueError(f"SEQUENCE must not be negative: {sequence}")
    tz = event.timezone
    lines = [
        "BEGIN:VEVENT",
        f"UID:{event.id}@eventapi",
        f"DTSTAMP:{_utc(event.updated_at or event.created_at or _NEVER_WRITTEN)}",
        f"SEQUENCE:{sequence}",
    ]
    if event.created_at is not None:
        lines.append(f"CREATED:{_utc(event.created_at)}")
    if event.updated_at is not None:
        lines.append(f"LAST-MODIFIED:{_utc(event.updated_at)}")
    first = timing.position(event.date, tz)
    last = first if event.end is None else timing.position(event.end, tz)
    if event.recurrence is None:
        lines.append(_moment("DTSTART", event.date, tz))
    else:
        lines.append(_walls("DTSTART", [timing.wall_start(event)], event))
    if event.end is not None:
        lines.append(_moment("DTEND", event.end, tz))
    if event.recurrence is not None:
        rules, stop = _recurrence(event)
        lines += rules
        last = max(last, stop + (last - first))
    lines.append(f"SUMMARY:{text(event.title)}")
    for name, value in (
        ("DESCRIPTION", event.description),
        ("LOCATION", event.location),
        ("CATEGORIES", event.category),  # a TEXT list: a comma in the one value is escaped
    ):
        if value is not None:
            lines.append(f"{name}:{text(value)}")
    if event.organizer is not None:
        # We know a display name only. A mailto: address would be invented, and clients
        # offer to reply to a mailto: organizer (iTIP); a data: URI holding the name is a
        # valid CAL-ADDRESS that names no mailbox and that no client tries to contact.
        uri = "data:," + quote(event.organizer, safe="")
        lines.append(f"ORGANIZER;CN={param(event.organizer)}:{uri}")
    lines += [f"STATUS:{STATUS[event.status]}", f"X-EVENTAPI-STATUS:{event.status}"]
    lines.append("END:VEVENT")
    return lines, (first, last)


def _recurrence(event: EventRead) -> tuple[list[str], datetime]:
    """The RRULE and EXDATE lines of a recurring event, and its last occurrence's start."""
    tz = event.timezone

    def to_utc(wall: datetime) -> datetime:
        return timing.position(wall, tz)

    assert event.recurrence is not None
    rule = recurrence.parse_rule(event.recurrence)
    start = timing.wall_start(event)
    walls = recurrence.expand(rule, start, to_utc=to_utc)
    if not walls:
        raise ValueError(f"event {event.id}: its rule gives no occurrence")
    skipped = {timing.position(value, tz) for value in event.exdates or ()}
    excluded = [wall for wall in walls if to_utc(wall) in skipped]
    if walls[0] != start:
        excluded.insert(0, start)
    utc_until = tz is not None or event.date.tzinfo is not None
    lines = [f"RRULE:{_bounded(rule, start, walls, to_utc, utc_until)}"]
    if excluded:
        lines.append(_walls("EXDATE", excluded, event))
    return lines, to_utc(walls[-1])


def _bounded(
    rule: recurrence.Rule,
    start: datetime,
    walls: list[datetime],
    to_utc: Callable[[datetime], datetime],
    utc_until: bool,
) -> str:
    """``rule``'s text, ending where our expansion (``walls``) ends, its UNTIL in UTC if
    ``utc_until`` else floating: the rule's own UNTIL if it gives the same occurrences,
    else the last occurrence."""
    if rule.count is not None and len(walls) == rule.count and walls[0] == start:
        return rule.text()
    candidates = [walls[-1].replace(microsecond=0)]
    if rule.until is not None and len(walls) < recurrence.MAX_OCCURRENCES:
        candidates.insert(0, rule.until)
    written = ""
    for until in candidates:
        if utc_until:
            until = until.astimezone(UTC) if until.tzinfo is not None else to_utc(until)
        else:
            until = until.replace(tzinfo=None)
        bounded = dataclasses.replace(rule, count=None, until=until)
        written = bounded.text()
        if recurrence.expand(bounded, start, to_utc=to_utc) == walls:
            break
    return written


def _walls(name: str, walls: list[datetime], event: EventRead) -> str:
    """A property of wall-clock times in the form of the series' DTSTART."""
    values = ",".join(stamp(wall) for wall in walls)
    if event.timezone is not None:
        return f"{name};TZID={param(event.timezone)}:{values}"
    if event.date.tzinfo is not None:
        return f"{name}:" + ",".join(stamp(wall) + "Z" for wall in walls)
    return f"{name}:{values}"


def _moment(name: str, value: datetime, tz: str | None) -> str:
    """A date or end as stated: wall time in ``tz``, an instant, or floating. A time ``tz``
    passes twice (a fall-back hour) is written as its UTC instant: RFC 5545 reads such a wall
    time as the first pass, as we do, but ical.js (Thunderbird) as the second."""
    if tz is None:
        return f"{name}:{_utc(value)}" if value.tzinfo else f"{name}:{stamp(value)}"
    moment = timing.position(value, tz)
    wall = zones.wall_clock(moment, tz)
    first, second = (wall.replace(tzinfo=zones.zone(tz), fold=n) for n in (0, 1))
    if first.utcoffset() == second.utcoffset():
        return f"{name};TZID={param(tz)}:{stamp(wall)}"
    return f"{name}:{_utc(moment)}"


def _utc(value: datetime) -> str:
    return stamp(dates.instant(value)) + "Z"


def _clean(value: str) -> str:
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newline escaped."""
    value = _clean(value).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


def param(value: str) -> str:
    """A parameter value: RFC 6868 caret escapes (^^, ^n, ^' for a DQUOTE, which a
    parameter value cannot hold), quoted when it has a colon, semicolon or comma."""
    value = _clean(value).replace("^", "^^").replace("\n", "^n").replace('"', "^'")
    return f'"{value}"' if re.search("[:;,]", value) else value


def fold(line: str) -> bytes:
    """One content line, folded (RFC 5545 3.1): at most 75 octets a line, CRLF and a space
    before each continuation, never inside a UTF-8 sequence."""
    data = line.encode()
    if len(data) <= 75:
        return data + b"\r\n"
    pieces: list[bytes] = []
    piece, room = b"", 75
    for char in line:
        octets = char.encode()
        if len(piece) + len(octets) > room:
            pieces.append(piece)
            piece, room = b"", 74  # the continuation's leading space is one of its 75
        piece += octets
    pieces.append(piece)
    return b"\r\n ".join(pieces) + b"\r\n"
