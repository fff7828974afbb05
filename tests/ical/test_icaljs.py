"""ical.js (the parser Thunderbird uses) reads our calendars, its time zones from our
VTIMEZONEs only (it has no database of its own), and expands each series: the occurrences
must be the ones our expander gives, as UTC instants, start and end.

One known difference, ical.js's: a wall-clock time the zone skips (02:30 on a spring-forward
night) or passes twice (01:30 on a fall-back night) is read with the UTC offset from after
the change, where RFC 5545 3.3.5 (and our expander, like Python's fold=0) takes the one from
before; and an occurrence that this reading puts at or before the previous one is dropped.
Occurrences at such times are compared under ical.js's reading, so that they still check
our VTIMEZONE's offsets; every other occurrence must be identical, end included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventapi.events import ical, recurrence, timing, zones
from eventapi.events.schemas import EventRead
from tests.ical.conftest import Expand
from tests.ical.series import Case, series, singles

pytestmark = pytest.mark.system  # runs node (tests/conftest.py: processes mean system)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _edge(wall: datetime, zone: str) -> bool:
    """Whether ``wall`` is skipped or passed twice in ``zone``."""
    first, second = (wall.replace(tzinfo=zones.zone(zone), fold=n) for n in (0, 1))
    return first.utcoffset() != second.utcoffset()


def _rule_walls(event: EventRead) -> list[datetime]:
    """The wall-clock times the series' rule gives (a time in a gap as the rule has it, not
    moved on as occurrence.date is), EXDATEs left out."""
    assert event.recurrence is not None
    tz = event.timezone

    def to_utc(wall: datetime) -> datetime:
        return timing.position(wall, tz)

    rule = recurrence.parse_rule(event.recurrence)
    skipped = {timing.position(value, tz) for value in event.exdates or ()}
    walls = recurrence.expand(rule, timing.wall_start(event), to_utc=to_utc)
    return [wall for wall in walls if to_utc(wall) not in skipped]


def _icaljs_reading(case: Case) -> list[tuple[datetime, datetime | None]]:
    """Our occurrences in the window as ical.js reads them: (start, stop), stop None where
    the start is at an edge (ical.js adds the duration to the wall-clock time there)."""
    zone = case.event.timezone
    low, high = case.window
    found: list[tuple[datetime, datetime | None]] = []
    occurrences = iter(timing.occurrences(case.event))
    pairs: list[tuple[datetime, timing.Occurrence]] = []
    for wall in _rule_walls(case.event):
        # Our expander counts a time moved out of a gap onto the next occurrence once: as
        # that next one's wall time, which is no edge (ical.js reads the moved one earlier,
        # and drops it as not after the one before).
        if pairs and timing.position(wall, zone) == pairs[-1][1].start:
            pairs[-1] = (wall, pairs[-1][1])
            continue
        pairs.append((wall, next(occurrences)))
    assert next(occurrences, None) is None
    for wall, occurrence in pairs:
        start: datetime = occurrence.start.replace(microsecond=0)
        stop: datetime | None = occurrence.stop.replace(microsecond=0)
        if zone is not None and _edge(wall, zone):
            later = wall.replace(tzinfo=zones.zone(zone), fold=1)
            start, stop = later.astimezone(UTC).replace(microsecond=0), None
        if found and start <= found[-1][0]:
            continue  # ical.js never goes back, nor repeats an occurrence
        if low <= start < high:
            found.append((start, stop))
    return found


@pytest.mark.parametrize("case", series(), ids=lambda case: case.name)
def test_series_expand_to_our_occurrences(case: Case, icaljs: Expand) -> None:
    [event] = icaljs(ical.calendar([(case.event, 4)]), *case.window)["events"]
    assert event["uid"] == f"{case.event.id}@eventapi"
    got = [(o["start"], o["end"]) for o in event["occurrences"]]
    if case.event.timezone is None and case.event.date.tzinfo is None:
        # Floating: the same wall-clock times, in no zone.
        assert all(start["zone"] in (None, "floating") for start, _ in got)
        walls = [(start["wall"], end["wall"]) for start, end in got]
        assert walls == [
            (start.replace(tzinfo=None).isoformat(), stop.replace(tzinfo=None).isoformat())
            for start, stop in case.expected()
        ]
        return
    expected = _icaljs_reading(case)
    assert len(expected) > 0
    assert [_instant(start["utc"]) for start, _ in got] == [start for start, _ in expected]
    for (_, end), (_, stop) in zip(got, expected, strict=True):
        if stop is not None:
            assert _instant(end["utc"]) == stop
    if case.event.timezone is not None:
        assert {start["zone"] for start, _ in got} == {case.event.timezone}


def test_only_edge_occurrences_differ() -> None:
    """The exception above is narrow: in these series, it touches a few occurrences only."""
    edges = sum(
        1
        for case in series()
        if case.event.timezone is not None
        for wall in _rule_walls(case.event)
        if case.window[0] <= timing.position(wall, case.event.timezone) < case.window[1]
        and _edge(wall, case.event.timezone)
    )
    assert 0 < edges < 30


def _single(event: EventRead, found: dict[str, object]) -> None:
    start, end = found["start"], found["end"]
    assert isinstance(start, dict)
    if event.date_utc is None:  # floating: compare wall-clock times
        assert start["wall"] == event.date.replace(microsecond=0).isoformat()
    else:
        assert _instant(start["utc"]) == event.date_utc.replace(microsecond=0)
    if event.end is None:
        assert end is None
        return
    assert isinstance(end, dict)
    if event.end_utc is None:
        assert end["wall"] == event.end.replace(microsecond=0).isoformat()
    else:
        assert _instant(end["utc"]) == event.end_utc.replace(microsecond=0)


def test_single_events_are_at_their_instants(icaljs: Expand) -> None:
    events = singles()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    found = icaljs(ical.calendar([(e, 1) for e in events]), now, now + timedelta(days=1))
    assert [e["uid"] for e in found["events"]] == [f"{e.id}@eventapi" for e in events]
    assert found["zones"] == sorted({e.timezone for e in events if e.timezone})
    for event, result in zip(events, found["events"], strict=True):
        assert result["occurrences"] is None
        _single(event, result)


@pytest.mark.parametrize(
    "text",
    [
        # Not a backslash right before a comma or semicolon: RFC 5545 has no escapes in a
        # parameter value, but ical.js (like icalendar) reads ``\\,`` in one as a comma.
        'Q&A: "ünïcødé", 😀; 会议 \\ back\nslash ^ ^n ^\'',
        "é😀会" * 60,  # folded between multi-byte characters
    ],
)
def test_statuses_and_text(text: str, icaljs: Expand) -> None:
    event = singles()[0].model_copy(
        update={"title": text, "organizer": text, "status": "postponed"}
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    [found] = icaljs(ical.calendar([(event, 1)]), now, now)["events"]
    assert found["summary"] == text
    assert found["organizer"]["cn"] == text
    assert found["organizer"]["uri"].startswith("data:,")
    assert found["status"] == "TENTATIVE"
