"""The calendar read back with the Python ``icalendar`` package: every property, TEXT and
parameter escaping, 75-octet folding, one VTIMEZONE per zone, determinism; and each series'
RRULE, EXDATE and UNTIL expanded with dateutil (a second, independent expansion) equal to
our expander's occurrences."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr

from eventapi.events import ical, timing
from eventapi.events.schemas import EventRead
from tests.ical.series import Case, make, series, singles

TRICKY = [
    "comma, semicolon; colon: backslash \\ end\\",
    "quotes \"double\" and 'single'",
    "new\nlines\r\nand\rreturns",
    "emoji 😀👩‍👩‍👧 and CJK 会议室 日本語 한국어",
    "caret ^ and ^n and ^' as text",
    "\\n is not a newline, \\, is not a comma",
    "tab\tinside",
]


# Read through Any: icalendar types a property as the union of every value type.
def parse(data: bytes) -> Any:
    return icalendar.Calendar.from_ical(data)


def calendar_name(cal: Any) -> str:
    """X-WR-CALNAME, a TEXT value that icalendar leaves escaped (it does not know the
    property): unescaped here, as RFC 5545 3.3.11 says."""
    raw: str = cal["X-WR-CALNAME"].to_ical().decode()
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], raw)


def only_event(data: bytes) -> Any:
    [event] = parse(data).walk("VEVENT")
    return event


def full_event(**fields: Any) -> EventRead:
    base: dict[str, Any] = {
        "title": "Conference",
        "description": "Talks",
        "date": "2026-05-04T09:00:00",
        "end": "2026-05-04T17:30:00",
        "location": "Chicago, IL",
        "category": "Technology",
        "organizer": "Event Corp",
        "timezone": "America/Chicago",
        "status": "rescheduled",
    }
    event = make(99, **{**base, **fields})
    stamps = {"created_at": datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)}
    stamps["updated_at"] = datetime(2025, 6, 7, 8, 9, 10, 111000, tzinfo=UTC)
    return event.model_copy(update=stamps)


def test_every_property() -> None:
    event = full_event()
    data = ical.calendar([(event, 7)], name="Team; events, all")
    cal = parse(data)
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["PRODID"]) == "-//eventapi//eventapi//EN"
    assert str(cal["CALSCALE"]) == "GREGORIAN"
    assert calendar_name(cal) == "Team; events, all"
    found = only_event(data)
    assert str(found["UID"]) == f"{event.id}@eventapi"
    assert found["SEQUENCE"] == 7
    assert found.decoded("DTSTAMP") == datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
    assert found.decoded("LAST-MODIFIED") == datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
    assert found.decoded("CREATED") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    chicago = ZoneInfo("America/Chicago")
    assert found["DTSTART"].params["TZID"] == "America/Chicago"
    assert found.decoded("DTSTART") == datetime(2026, 5, 4, 9, tzinfo=chicago)
    assert found.decoded("DTEND") == datetime(2026, 5, 4, 17, 30, tzinfo=chicago)
    assert str(found["SUMMARY"]) == "Conference"
    assert str(found["DESCRIPTION"]) == "Talks"
    assert str(found["LOCATION"]) == "Chicago, IL"
    assert [str(c) for c in found["CATEGORIES"].cats] == ["Technology"]
    assert found["ORGANIZER"].params["CN"] == "Event Corp"
    assert str(found["ORGANIZER"]) == "data:,Event%20Corp"
    assert str(found["STATUS"]) == "CONFIRMED"
    assert str(found["X-EVENTAPI-STATUS"]) == "rescheduled"
    assert "RRULE" not in found
    assert "EXDATE" not in found


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("scheduled", "CONFIRMED"),
        ("postponed", "TENTATIVE"),
        ("rescheduled", "CONFIRMED"),
        ("cancelled", "CANCELLED"),
    ],
)
def test_status(status: str, expected: str) -> None:
    found = only_event(ical.calendar([(full_event(status=status), 1)]))
    assert str(found["STATUS"]) == expected
    assert str(found["X-EVENTAPI-STATUS"]) == status


def test_optional_fields_left_out_and_stamp_fallbacks() -> None:
    bare = make(5, date="2026-05-01T12:00:00Z")
    found = only_event(ical.calendar([(bare, 0)]))
    for name in ("DTEND", "DESCRIPTION", "LOCATION", "CATEGORIES", "ORGANIZER", "CREATED"):
        assert name not in found
    assert "LAST-MODIFIED" not in found
    assert found.decoded("DTSTAMP") == datetime(1970, 1, 1, tzinfo=UTC)
    assert found.decoded("DTSTART") == datetime(2026, 5, 1, 12, tzinfo=UTC)
    created = bare.model_copy(update={"created_at": datetime(2025, 3, 1, tzinfo=UTC)})
    found = only_event(ical.calendar([(created, 0)]))
    assert found.decoded("DTSTAMP") == datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="SEQUENCE"):
        ical.calendar([(bare, -1)])


def test_three_kinds_of_date() -> None:
    data = ical.calendar([(e, 1) for e in singles()]).decode()
    assert "DTSTART;TZID=Europe/London:20260701T093000\r\n" in data
    assert "DTSTART:20260501T120000Z\r\n" in data  # an instant, its .750 truncated
    assert "DTEND:20260501T130000Z\r\n" in data
    assert "DTSTART:20260501T120000\r\n" in data  # floating
    # The second pass of Chicago's fall-back hour, and Lord Howe's 01:45 passed twice: UTC.
    assert "DTSTART:20261101T073000Z\r\n" in data
    assert "DTSTART:20260404T144500Z\r\n" in data


@pytest.mark.parametrize("value", TRICKY)
def test_text_and_parameters_round_trip(value: str) -> None:
    event = full_event(
        title=value, description=value, location=value, category=value, organizer=value
    )
    data = ical.calendar([(event, 1)], name=value)
    found = only_event(data)
    expected = value.replace("\r\n", "\n").replace("\r", "\n")
    for name in ("SUMMARY", "DESCRIPTION", "LOCATION"):
        assert str(found[name]) == expected
    assert [str(c) for c in found["CATEGORIES"].cats] == [expected]
    if "\\," in value or "\\;" in value:
        # icalendar undoes TEXT escapes in parameter values too, which RFC 5545 does not
        # have there (a parameter value is taken as it stands): its reading of ``\,``.
        expected_cn = expected.replace("\\,", ",").replace("\\;", ";")
    else:
        expected_cn = expected
    assert found["ORGANIZER"].params["CN"] == expected_cn
    assert calendar_name(parse(data)) == expected


def test_long_lines_fold_at_75_octets() -> None:
    text = "é😀会" * 400 + "x" * 77 + ", ; \\ \n" * 30
    event = full_event(description=text[:5000], title=("ab😀" * 70)[:200])
    data = ical.calendar([(event, 1)])
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 75 for line in lines)
    for line in lines:
        line.decode()  # each physical line is whole UTF-8: no sequence is split
    assert sum(line.startswith(b" ") for line in lines) > 50
    assert b"\n" not in data.replace(b"\r\n", b"")
    found = only_event(data)
    assert str(found["DESCRIPTION"]) == event.description
    assert event.description == text[:5000].rstrip()
    assert str(found["SUMMARY"]) == ("ab😀" * 70)[:200]


@pytest.mark.parametrize("line", ["x" * 75, "x" * 76, "😀" * 40, "a" + "😀" * 40, "é" * 100])
def test_fold_edges(line: str) -> None:
    folded = ical.fold(line)
    physical = folded.split(b"\r\n")
    assert physical[-1] == b""
    assert all(len(p) <= 75 and p.decode() for p in physical[:-1])
    assert all(p.startswith(b" ") for p in physical[1:-1])
    assert folded.replace(b"\r\n ", b"").decode() == line + "\r\n"
    # Full lines: a line is only cut where the next character would not fit.
    for piece, after in itertools.pairwise(physical[:-1]):
        assert len(piece) + len(after[1:].decode()[0].encode()) > 75


def test_one_vtimezone_per_zone_before_the_events() -> None:
    events = [(case.event, 1) for case in series()] + [(e, 2) for e in singles()]
    data = ical.calendar(events)
    cal = parse(data)
    tzids = [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")]
    used = {e.timezone for e, _ in events if e.timezone}
    assert tzids == sorted(used)
    text = data.decode()
    assert text.rindex("END:VTIMEZONE") < text.index("BEGIN:VEVENT")
    assert [str(e["UID"]) for e in cal.walk("VEVENT")] == [f"{e.id}@eventapi" for e, _ in events]


def test_deterministic() -> None:
    events = [(case.event, 3) for case in series()] + [(e, 1) for e in singles()]
    first = ical.calendar(events, name="x")
    assert ical.calendar(events, name="x") == first
    copies = [(e.model_copy(deep=True), n) for e, n in events]
    assert ical.calendar(copies, name="x") == first
    assert ical.calendar([]) == (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//eventapi//eventapi//EN\r\n"
        b"CALSCALE:GREGORIAN\r\nEND:VCALENDAR\r\n"
    )


def _dateutil_occurrences(found: Any) -> list[datetime]:
    """The series' starts by dateutil, from the parsed DTSTART, RRULE and EXDATE."""
    start: datetime = found.decoded("DTSTART")
    rule = found["RRULE"].to_ical().decode()
    starts = list(rrulestr(rule, dtstart=start))
    excluded: set[datetime] = set()
    exdates = found.get("EXDATE")
    for exdate in exdates if isinstance(exdates, list) else [exdates] if exdates else []:
        excluded.update(value.dt for value in exdate.dts)
    return [s for s in starts if s not in excluded]


@pytest.mark.parametrize("case", series(), ids=lambda case: case.name)
def test_series_rrule_expands_to_our_occurrences(case: Case) -> None:
    found = only_event(ical.calendar([(case.event, 1)]))
    rule = found["RRULE"].to_ical().decode()
    floating = case.event.timezone is None and case.event.date.tzinfo is None
    until = re.search("UNTIL=([0-9T]+Z?)", rule)
    assert until is None or until[1].endswith("Z") != floating
    ours = [o.start.replace(microsecond=0) for o in timing.occurrences(case.event)]
    got = _dateutil_occurrences(found)
    instants = [g.replace(tzinfo=UTC) if floating else g.astimezone(UTC) for g in got]
    # A wall time moved out of a gap onto the next occurrence is one occurrence (RFC 5545
    # 3.8.5.3: duplicate instances are ignored), which dateutil leaves to its caller.
    assert [t for n, t in enumerate(instants) if n == 0 or t != instants[n - 1]] == ours


def test_rrule_bounds() -> None:
    """UNTIL rewritten as the expander reads it; a capped series ends at its last
    occurrence; a DTSTART outside the rule is an EXDATE, its COUNT an UNTIL."""
    by_name = {case.name: case for case in series()}

    def rendered(name: str, prop: str) -> str:
        value: bytes = only_event(ical.calendar([(by_name[name].event, 1)]))[prop].to_ical()
        return value.decode()

    # 18:00 CST on 30 November
    assert "UNTIL=20261201T000000Z" in rendered("chicago-weekly-exdates-wall-until", "RRULE")
    assert "UNTIL=20261201T000000;" in rendered("floating-weekly-utc-until", "RRULE") + ";"
    assert "UNTIL=20260601T000000Z" in rendered("utc-instant-weekly-until", "RRULE")
    assert "COUNT=60" in rendered("sydney-monthly-bymonthday-count", "RRULE")
    capped = by_name["chicago-weekly-no-end-capped"].event
    last = timing.occurrences(capped)[-1].start
    assert f"UNTIL={last:%Y%m%dT%H%M%S}Z" in rendered("chicago-weekly-no-end-capped", "RRULE")
    bounded = rendered("chicago-dtstart-not-in-rule-count", "RRULE")
    assert "COUNT" not in bounded
    assert "UNTIL=20260331T170000Z" in bounded
    exdate = only_event(ical.calendar([(by_name["chicago-dtstart-not-in-rule-count"].event, 1)]))
    assert [d.dt.replace(tzinfo=None) for d in exdate["EXDATE"].dts] == [datetime(2026, 3, 2, 12)]


def test_exdates_in_the_form_of_dtstart() -> None:
    case = series()[0]
    text = ical.calendar([(case.event, 1)]).decode().replace("\r\n ", "")
    # The third EXDATE was sent as an instant: written as the wall-clock time it names.
    assert "EXDATE;TZID=America/Chicago:20260309T180000,20261102T180000,20261105T180000" in text
