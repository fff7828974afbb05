"""VTIMEZONE components (RFC 5545 3.6.5) built from the shipped ``tzdata`` (zones.py), so a
calendar client converts our TZID times with the same rules the API uses, not its own copy.

A component covers a span of UTC instants: it opens with the observance in force a day
before the span starts (so no time of the span comes before the first onset: ical.js gives
offset 0 to such a time), then lists every change of UTC offset, DST flag or abbreviation
until a day after it ends. The changes are found by probing zoneinfo, which reads both the
file's explicit transitions and its footer rule: a day at a time, then bisected to the
second (a probe a week apart past 2040, where only the footer's yearly rules apply).

Size: changes of one kind (offsets, DST flag, name) that fall in consecutive years on the
same weekday of the same month at the same local time become one sub-component with a
yearly RRULE (BYDAY=2SU, -1SU, or a seven-day BYMONTHDAY window such as Chile's Sun>=2)
ending with an UTC UNTIL; the others of a kind are one sub-component with RDATEs. A zone
keeping one rule for centuries is then a few lines, whatever the span."""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eventapi.events import zones

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FIRST = datetime(1, 1, 2, tzinfo=UTC)  # a day in: a local time must stay in year 1
_LAST = datetime(9999, 12, 30, tzinfo=UTC)
_DAILY_UNTIL = datetime(2040, 1, 1, tzinfo=UTC)  # explicit transitions end before this


def stamp(value: datetime) -> str:
    """A date-time's fields in RFC 5545's basic form, whole seconds (no zone, no Z)."""
    return (
        f"{value.year:04d}{value.month:02d}{value.day:02d}"
        f"T{value.hour:02d}{value.minute:02d}{value.second:02d}"
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A change of observance: at the UTC instant ``at``, from offset ``before`` to ``after``
    (``dst``, ``name``: the new observance's daylight-saving flag and abbreviation)."""

    at: datetime
    before: timedelta
    after: timedelta
    dst: bool
    name: str

    @property
    def onset(self) -> datetime:
        """The change's local time as RFC 5545 writes it: in the offset before it."""
        return (self.at + self.before).replace(tzinfo=None)

    @property
    def kind(self) -> tuple[timedelta, timedelta, bool, str]:
        return self.before, self.after, self.dst, self.name


def _state(zone: str, moment: datetime) -> tuple[timedelta, bool, str]:
    local = moment.astimezone(zones.zone(zone))
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None  # a ZoneInfo always says
    assert dst is not None
    return offset, bool(dst), local.tzname() or ""


def changes(zone: str, start: datetime, stop: datetime) -> list[Change]:
    """The observance at ``start`` (as a change from and to its own offset, at ``start``),
    then every change up to ``stop``."""
    state = _state(zone, start)
    found = [Change(start, state[0], *state)]
    moment = start
    while moment < stop:
        step = timedelta(days=1 if moment < _DAILY_UNTIL else 7)
        probe = min(moment + step, stop)
        if _state(zone, probe) != state:
            low, high = moment, probe  # the change is in (low, high]: bisect to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                low, high = (middle, high) if _state(zone, middle) == state else (low, middle)
            new = _state(zone, high)
            found.append(Change(high, state[0], *new))
            state, probe = new, high
        moment = probe
    return found


def component(zone: str, first: datetime, last: datetime) -> list[str]:
    """The VTIMEZONE of ``zone``, right for every instant from ``first`` to ``last``."""
    start = max(_FIRST, first.astimezone(UTC) - timedelta(days=1))
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    stop = min(_LAST, last.astimezone(UTC) + timedelta(days=1)).replace(microsecond=0)
    found = changes(zone, start, stop)
    parts: list[tuple[datetime, list[str]]] = [(found[0].onset, _observance(found[0], []))]
    kinds: dict[tuple[timedelta, timedelta, bool, str], list[Change]] = {}
    for change in found[1:]:
        kinds.setdefault(change.kind, []).append(change)
    for same in kinds.values():
        singles: list[Change] = []
        for run in _runs(same):
            if len(run) == 1:
                singles += run
            else:
                parts.append((run[0].onset, _observance(run[0], [_yearly(run)])))
        if singles:
            rdates = [f"RDATE:{stamp(c.onset)}" for c in singles[1:]]
            parts.append((singles[0].onset, _observance(singles[0], rdates)))
    parts.sort(key=lambda part: part[0])
    return [
        "BEGIN:VTIMEZONE",
        f"TZID:{zone}",
        *(line for _, lines in parts for line in lines),
        "END:VTIMEZONE",
    ]


def _offset(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def _observance(change: Change, rules: list[str]) -> list[str]:
    kind = "DAYLIGHT" if change.dst else "STANDARD"
    name = [f"TZNAME:{change.name}"] if change.name and change.name.isascii() else []
    return [
        f"BEGIN:{kind}",
        f"DTSTART:{stamp(change.onset)}",
        f"TZOFFSETFROM:{_offset(change.before)}",
        f"TZOFFSETTO:{_offset(change.after)}",
        *name,
        *rules,
        f"END:{kind}",
    ]


def _pattern(change: Change) -> tuple[int, int, tuple[int, int, int]]:
    onset = change.onset
    return onset.month, onset.weekday(), (onset.hour, onset.minute, onset.second)


def _days(run: list[Change]) -> tuple[list[int], list[int]]:
    """The run's days of the month, counted from its start (1...) and from its end (-1...)."""
    days = [c.onset.day for c in run]
    ends = [c.onset.day - monthrange(c.onset.year, c.onset.month)[1] - 1 for c in run]
    return days, ends


def _window(days: list[int]) -> bool:
    return max(days) - min(days) <= 6  # one weekday in seven consecutive days: one date


def _runs(same: list[Change]) -> list[list[Change]]:
    """``same`` (changes of one kind, in order) cut into runs a yearly rule can state: one a
    year, consecutive years, same month, weekday and time, within a seven-day window."""
    runs: list[list[Change]] = []
    bounds: list[list[int]] = []  # the run's first and last days, from the start and end
    for change in same:
        [day], [end] = _days([change])
        run = runs[-1] if runs else []
        if run and change.onset.year == run[-1].onset.year + 1:
            low, high, low_end, high_end = bounds[-1]
            low, high = min(low, day), max(high, day)
            low_end, high_end = min(low_end, end), max(high_end, end)
            fits = high - low <= 6 or high_end - low_end <= 6
            if fits and _pattern(change) == _pattern(run[0]):
                run.append(change)
                bounds[-1] = [low, high, low_end, high_end]
                continue
        runs.append([change])
        bounds.append([day, day, end, end])
    return runs


def _yearly(run: list[Change]) -> str:
    month, weekday, _ = _pattern(run[0])
    day = WEEKDAYS[weekday]
    days, ends = _days(run)
    rule = f"RRULE:FREQ=YEARLY;BYMONTH={month};"
    nth = [n for n in (1, 8, 15, 22) if max(days) - 6 <= n <= min(days)]
    if nth:
        rule += f"BYDAY={(nth[0] + 6) // 7}{day}"
    elif _window(ends) and min(ends) >= -7:
        rule += f"BYDAY=-1{day}"
    else:
        first = max(max(days) - 6, 1) if _window(days) else min(min(ends), -7)
        window = ",".join(str(n) for n in range(first, first + 7))
        rule += f"BYMONTHDAY={window};BYDAY={day}"
    # UNTIL a day after the last onset: the same rule (the next onset is a year away), and
    # the last onset stays in for a reader that compares UNTIL with local time (icalendar's
    # dateutil does; RFC 5545 compares UTC).
    return f"{rule};UNTIL={stamp(run[-1].at + timedelta(days=1))}Z"
