"""Our VTIMEZONEs, read back by the Python ``icalendar`` package (its ``to_tz``: the
components' DTSTART, RRULE and RDATE expanded by dateutil), give the UTC offset zoneinfo
with the shipped tzdata gives, three hours either side of every change over the span
the events use and between them (ical.js checks the changes to the second at the times
series fall on: test_icaljs.py); and they stay small however long the span."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest

from eventapi.events import ical, vtimezone, zones
from tests.ical.series import make

HOUR = timedelta(hours=1)

SPANS = [
    ("America/Chicago", datetime(2026, 1, 5, tzinfo=UTC), datetime(2045, 3, 1, tzinfo=UTC)),
    ("Europe/London", datetime(1995, 6, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(1985, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 1, 1, tzinfo=UTC), datetime(2400, 1, 1, tzinfo=UTC)),
    ("America/Santiago", datetime(2010, 1, 1, tzinfo=UTC), datetime(2060, 1, 1, tzinfo=UTC)),
    ("Asia/Jerusalem", datetime(2010, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)),
    ("Africa/Casablanca", datetime(2015, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
    ("Asia/Tokyo", datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
    ("UTC", datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
]


def _parsed(zone: str, start: datetime, stop: datetime) -> Any:
    lines = vtimezone.component(zone, start, stop)
    data = b"".join(ical.fold(line) for line in ["BEGIN:VCALENDAR", *lines, "END:VCALENDAR"])
    [found] = icalendar.Calendar.from_ical(data).walk("VTIMEZONE")
    assert str(found["TZID"]) == zone
    return found


@pytest.mark.parametrize(("zone", "start", "stop"), SPANS, ids=[s[0] for s in SPANS])
def test_offsets_equal_zoneinfo(zone: str, start: datetime, stop: datetime) -> None:
    tz = _parsed(zone, start, stop).to_tz(lookup_tzid=False)  # ours, not its database
    real = zones.zone(zone)
    changes = vtimezone.changes(zone, start, stop)[1:]
    # Local wall-clock times three hours either side of every change, and between changes:
    # none is skipped or repeated. (dateutil's VTIMEZONE zones convert from UTC with the
    # default fromutc, which is wrong for up to the offset's hours around a change; read
    # from local time they are exact.)
    probes = [start, stop] + [c.at + d for c in changes for d in (-3 * HOUR, 3 * HOUR)]
    probes += [a.at + (b.at - a.at) / 2 for a, b in itertools.pairwise(changes)]
    for moment in probes:
        wall = moment.astimezone(real).replace(tzinfo=None)
        assert wall.replace(tzinfo=tz).utcoffset() == wall.replace(tzinfo=real).utcoffset(), wall
    if zone not in ("Asia/Tokyo", "UTC"):
        assert len(changes) >= 2 * (stop.year - start.year) - 2


@pytest.mark.parametrize(("zone", "start", "stop"), SPANS, ids=[s[0] for s in SPANS])
def test_size_is_bounded(zone: str, start: datetime, stop: datetime) -> None:
    """Yearly rules: a zone that keeps one for centuries (Sydney's 374 years here) is a few
    sub-components; the others are bounded by their history of rule changes."""
    lines = vtimezone.component(zone, start, stop)
    changes = len(vtimezone.changes(zone, start, stop))
    assert len(lines) < (45 if zone == "Australia/Sydney" else 150)
    if changes > 20:
        assert len(lines) < 3 * changes  # one sub-component (7 lines or more) each: 7x


def test_one_standard_without_changes() -> None:
    for zone in ("UTC", "Asia/Tokyo"):
        found = _parsed(zone, datetime(2026, 1, 1, tzinfo=UTC), datetime(2046, 1, 1, tzinfo=UTC))
        assert [c.name for c in found.subcomponents] == ["STANDARD"]


def test_yearly_rules() -> None:
    start, stop = datetime(2026, 1, 1, tzinfo=UTC), datetime(2046, 1, 1, tzinfo=UTC)
    text = "\n".join(vtimezone.component("Australia/Lord_Howe", start, stop))
    assert "TZOFFSETFROM:+1030\nTZOFFSETTO:+1100" in text
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1SU;UNTIL=" in text
    assert "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=" in text
    london = "\n".join(vtimezone.component("Europe/London", start, stop))
    assert "BYMONTH=3;BYDAY=-1SU" in london
    assert "BYMONTH=10;BYDAY=-1SU" in london
    chile = "\n".join(vtimezone.component("America/Santiago", start, stop))
    assert "BYMONTHDAY=2,3,4,5,6,7,8;BYDAY=SU" in chile


def test_worst_case_calendar_size() -> None:
    """A 1,000-occurrence weekly series over 19 years, and one yearly over 1,000 years."""
    weekly = make(
        1, date="2026-01-06T09:00:00", timezone="America/Chicago", recurrence="FREQ=WEEKLY"
    )
    yearly = make(
        2, date="2026-01-06T09:00:00", timezone="America/Chicago", recurrence="FREQ=YEARLY"
    )
    small = ical.calendar([(weekly, 1)])
    assert len(small) < 2000
    assert len(ical.calendar([(weekly, 1), (yearly, 1)])) < 2500
