"""IANA time zones, read from the ``tzdata`` package the API ships with, never from the host:
every machine (and every process of one deployment) then agrees on which names exist and
on their rules, whatever the operating system has installed.

An event's wall-clock time in its zone becomes an instant here. A wall time the clocks skip
(the spring-forward gap) does not exist and is refused; one they pass twice (the fall-back
fold) is the first of the two, as RFC 5545 3.3.5 and Python's ``fold=0`` both say.
"""

from __future__ import annotations

import importlib.resources
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1)
def names() -> frozenset[str]:
    """Every zone name the shipped database defines (tzdata's own list)."""
    return frozenset((importlib.resources.files("tzdata") / "zones").read_text().split())


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The zone called ``name``, which must be one of names() (checked by the schemas)."""
    path = importlib.resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    with path.open("rb") as rules:
        return ZoneInfo.from_file(rules, key=name)


def check_name(name: str) -> str:
    if name not in names():
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as America/Chicago (case matters)"
        )
    return name


class NonexistentTime(ValueError):
    """A wall-clock time the zone's clocks skip."""


def instant(wall: datetime, name: str) -> datetime:
    """The UTC instant of the naive wall-clock time ``wall`` in zone ``name``."""
    moment = shifted_instant(wall, name)
    if wall_clock(moment, name) != wall:
        raise NonexistentTime(
            f"{wall.isoformat()} does not exist in {name}: the clocks skip it "
            "(daylight saving time begins); give a time outside the gap, or an offset"
        )
    return moment


def shifted_instant(wall: datetime, name: str) -> datetime:
    """Like instant(), but a wall time in a gap is moved on by the gap's length, as RFC 5545
    3.3.10 says of a recurrence's occurrence that falls there (02:30 on the night the clocks
    skip from 02:00 to 03:00 happens at 03:30): with fold=0 an imaginary time takes the
    offset from before the transition, which is that rule."""
    return wall.replace(tzinfo=zone(name), fold=0).astimezone(UTC)


def wall_clock(moment: datetime, name: str) -> datetime:
    """The naive wall-clock time of the aware ``moment`` in zone ``name``."""
    return moment.astimezone(zone(name)).replace(tzinfo=None)
