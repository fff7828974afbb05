"""The events the iCalendar tests render: recurring series across daylight-saving changes
both ways, in zones with 60- and 30-minute shifts, both hemispheres, UTC and floating, with
EXDATEs, COUNT and UNTIL (wall-clock and UTC), BYDAY and BYMONTHDAY rules; and single
events of every kind of date. Each series comes with the window its occurrences are
compared in (start included, end excluded)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventapi.events import timing
from eventapi.events.schemas import EventCreate, EventRead


def make(number: int, **fields: Any) -> EventRead:
    """An event as the store returns it: checked as a client's body is, then given an id."""
    body = EventCreate.model_validate({"title": f"event {number}", **fields})
    return EventRead(id=f"{number:024x}", **body.model_dump())


@dataclass(frozen=True)
class Case:
    name: str
    event: EventRead
    window: tuple[datetime, datetime]

    def expected(self) -> list[tuple[datetime, datetime]]:
        """Our expander's occurrences starting in the window, as (start, stop) instants in
        whole seconds (iCalendar has no fractions)."""
        low, high = self.window
        return [
            (o.start.replace(microsecond=0), o.stop.replace(microsecond=0))
            for o in timing.occurrences(self.event)
            if low <= o.start < high
        ]


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


YEAR_2026 = (_utc(2026, 1, 1), _utc(2027, 1, 1))


def series() -> list[Case]:
    cases = [
        Case(
            "chicago-weekly-exdates-wall-until",
            make(
                1,
                date="2026-01-05T18:00:00",
                end="2026-01-05T19:30:00",
                timezone="America/Chicago",
                recurrence="FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20261130T180000",
                exdates=["2026-03-09T18:00:00", "2026-11-02T18:00:00", "2026-11-06T00:00:00Z"],
            ),
            YEAR_2026,
        ),
        Case(
            # 02:30 on 8 March does not exist (it is 03:30 CDT); 01:30 on 1 November is
            # passed twice (the first, CDT).
            "chicago-daily-count-gap-and-fold",
            make(
                2,
                date="2026-03-05T02:30:00",
                end="2026-03-05T02:40:00",
                timezone="America/Chicago",
                recurrence="FREQ=DAILY;BYHOUR=1,2;COUNT=600",
            ),
            YEAR_2026,
        ),
        Case(
            # The last Sunday of March at 01:30 is in London's gap; of October, in its fold.
            "london-monthly-last-sunday-utc-until",
            make(
                3,
                date="2026-01-25T01:30:00",
                end="2026-01-25T01:45:00",
                timezone="Europe/London",
                recurrence="FREQ=MONTHLY;BYDAY=-1SU;UNTIL=20281231T000000Z",
                exdates=["2027-02-28T01:30:00"],
            ),
            (_utc(2026, 1, 1), _utc(2029, 1, 1)),
        ),
        Case(
            # Lord Howe: +10:30 to +11 at 02:00 on the first Sunday of October (02:00-02:30
            # does not exist), back at 02:00 on the first Sunday of April (01:30-02:00 twice).
            "lord-howe-weekly-30-minute-shift",
            make(
                4,
                date="2026-03-01T01:15:00",
                end="2026-03-01T01:20:00",
                timezone="Australia/Lord_Howe",
                recurrence="FREQ=WEEKLY;BYDAY=SU;BYHOUR=1,2;BYMINUTE=15,45;UNTIL=20270501",
                exdates=["2026-04-05T01:45:00"],
            ),
            (_utc(2026, 1, 1), _utc(2027, 6, 1)),
        ),
        Case(
            "sydney-monthly-bymonthday-count",
            make(
                5,
                date="2026-01-01T02:30:00",
                end="2026-01-01T04:00:00",
                timezone="Australia/Sydney",
                recurrence="FREQ=MONTHLY;BYMONTHDAY=1,4,5,-1;COUNT=60",
                exdates=["2026-10-04T02:30:00"],
            ),
            (_utc(2025, 12, 1), _utc(2027, 6, 1)),
        ),
        Case(
            # Every year in Sydney's October gap (from a DTSTART the rule does not match),
            # for 1,000 years: the VTIMEZONE's yearly rules, far from now.
            "sydney-yearly-gap-1000-years",
            make(
                6,
                date="2026-09-27T02:30:00",
                timezone="Australia/Sydney",
                recurrence="FREQ=YEARLY;BYMONTH=10;BYDAY=1SU",
            ),
            (_utc(3010, 1, 1), _utc(3040, 1, 1)),
        ),
        Case(
            # No end: cut at 1,000 occurrences (about 19 years) by our expander.
            "chicago-weekly-no-end-capped",
            make(
                7,
                date="2026-01-06T09:00:00",
                end="2026-01-06T10:00:00",
                timezone="America/Chicago",
                recurrence="FREQ=WEEKLY;BYDAY=TU",
            ),
            (_utc(2044, 1, 1), _utc(2046, 1, 1)),
        ),
        Case(
            # DTSTART (a Monday) is not an occurrence of the rule (Tuesdays).
            "chicago-dtstart-not-in-rule-count",
            make(
                8,
                date="2026-03-02T12:00:00",
                timezone="America/Chicago",
                recurrence="FREQ=WEEKLY;BYDAY=TU;COUNT=5",
            ),
            YEAR_2026,
        ),
        Case(
            "utc-instant-weekly-until",
            make(
                9,
                date="2026-03-01T23:30:00Z",
                end="2026-03-02T00:30:00Z",
                recurrence="FREQ=WEEKLY;BYDAY=SU,WE;UNTIL=20260601T000000",
                exdates=["2026-03-04T23:30:00Z"],
            ),
            YEAR_2026,
        ),
        Case(
            "utc-zone-monthly",
            make(
                10,
                date="2026-01-31T12:00:00",
                timezone="UTC",
                recurrence="FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=24",
            ),
            (_utc(2026, 1, 1), _utc(2028, 1, 1)),
        ),
        Case(
            "tokyo-daily-interval",
            make(
                11,
                date="2026-01-01T08:00:00",
                end="2026-01-01T09:00:00",
                timezone="Asia/Tokyo",
                recurrence="FREQ=DAILY;INTERVAL=3;UNTIL=20260401T000000Z",
            ),
            YEAR_2026,
        ),
        Case(
            # Chile: Sun>=2 in April and September (a BYMONTHDAY window in its VTIMEZONE).
            "santiago-monthly-last-day",
            make(
                12,
                date="2026-01-31T23:30:00",
                end="2026-02-01T00:30:00",
                timezone="America/Santiago",
                recurrence="FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20271231",
            ),
            (_utc(2026, 1, 1), _utc(2028, 2, 1)),
        ),
    ]
    return [*cases, *floating()]


def floating() -> list[Case]:
    """Series with no zone and naive dates: the same wall-clock time everywhere."""
    return [
        Case(
            "floating-daily-exdates-until",
            make(
                20,
                date="2026-03-06T02:30:00",
                end="2026-03-06T03:00:00",
                recurrence="FREQ=DAILY;UNTIL=20260410T023000",
                exdates=["2026-03-08T02:30:00", "2026-03-29T02:30:00"],
            ),
            YEAR_2026,
        ),
        Case(
            "floating-weekly-utc-until",
            make(
                21,
                date="2026-10-20T01:30:00",
                recurrence="FREQ=WEEKLY;BYDAY=SU,TU;UNTIL=20261201T000000Z",
            ),
            YEAR_2026,
        ),
    ]


def singles() -> list[EventRead]:
    """One event of every kind of date."""
    return [
        make(30, date="2026-07-01T09:30:00", end="2026-07-01T11:00:00", timezone="Europe/London"),
        make(31, date="2026-03-08T01:59:59", end="2026-03-08T03:00:00", timezone="America/Chicago"),
        # An instant in the second pass of Chicago's fall-back hour: written in UTC.
        make(
            32, date="2026-11-01T07:30:00Z", end="2026-11-01T07:45:00Z", timezone="America/Chicago"
        ),
        make(33, date="2026-10-04T01:45:00", timezone="Australia/Lord_Howe"),
        make(
            34,
            date="2026-04-05T01:45:00",
            end="2026-04-05T02:15:00",
            timezone="Australia/Lord_Howe",
        ),
        make(35, date="2026-05-01T12:00:00.750Z", end="2026-05-01T13:00:00.250Z"),
        make(36, date="2026-05-01T12:00:00", end="2026-05-02T12:00:00"),
        make(37, date="2400-06-01T12:00:00", timezone="Australia/Sydney"),
        make(38, date="2026-06-01T12:00:00", timezone="Asia/Tokyo"),
    ]
