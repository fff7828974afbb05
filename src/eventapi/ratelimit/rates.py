"""EVENTAPI_RATE_LIMIT and EVENTAPI_WRITE_RATE_LIMIT: parsed, checked, and turned into the
policies the limiter enforces.

A limit is ``<count>/<unit>``: ``100/second``, ``60/minute``, ``1000/hour``, ``5000/day``
(also ``s``, ``sec``, ``m``, ``min``, ``h``, ``hr``, ``d``, and plurals; any case, spaces
allowed around the parts). It is a token bucket: a client may send ``count`` requests at
once, then one more every ``period / count`` seconds. ``off`` or ``none`` turns a limit off
explicitly; an empty value leaves it unset.

Unset, both limits are off, except that EVENTAPI_ENV=production limits writes to
PRODUCTION_WRITE_LIMIT (10/second) per client: enough for any interactive use and for a
careful script, and a ceiling on what one leaked or misused key can write. Set
EVENTAPI_WRITE_RATE_LIMIT to change it, or to ``off`` to have none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eventapi.settings import Settings

PRODUCTION_WRITE_LIMIT = "10/second"
OFF = frozenset({"off", "none"})
MAX_COUNT = 1_000_000
UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
_SHAPE = re.compile(r"\s*([0-9]+)\s*/\s*([a-z]+)\s*", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period`` seconds, as a token bucket of ``count`` tokens."""

    count: int
    period: int

    @property
    def interval(self) -> float:
        """Seconds between two tokens."""
        return self.period / self.count

    def __str__(self) -> str:
        return f"{self.count}/{_NAMES[self.period]}"


def parse_rate(text: str, variable: str) -> Rate | None:
    """``text`` as a Rate; None when it is off (``off``, ``none``) or empty.

    Raises ValueError naming ``variable`` (the environment variable) if it is neither."""
    if not text.strip() or text.strip().lower() in OFF:
        return None
    shape = _SHAPE.fullmatch(text)
    period = _unit(shape.group(2).lower()) if shape else None
    if shape is None or period is None:
        raise ValueError(
            f"{variable}={text!r} is not a rate limit: use <count>/<second|minute|hour|day> "
            "(e.g. 100/second or 60/minute), or off"
        )
    count = int(shape.group(1))
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(
            f"{variable}={text!r}: the count must be between 1 and {MAX_COUNT} "
            "(to have no limit, set it to off)"
        )
    return Rate(count, period)


def _unit(name: str) -> int | None:
    """Seconds in the unit ``name``, or None; a plural is the singular with an s ("ms" is
    not "m" twice: it is refused)."""
    if name in UNITS:
        return UNITS[name]
    if len(name) > 2 and name.endswith("s"):
        return UNITS.get(name[:-1])
    return None


@dataclass(frozen=True, slots=True)
class Policy:
    """One limit as the RateLimit-Policy header names it: ``default`` (every request,
    EVENTAPI_RATE_LIMIT) or ``writes`` (writes only, EVENTAPI_WRITE_RATE_LIMIT)."""

    name: str
    rate: Rate
    writes_only: bool

    @property
    def header(self) -> str:
        """Its RateLimit-Policy item (draft-ietf-httpapi-ratelimit-headers-11)."""
        return f'"{self.name}";q={self.rate.count};w={self.rate.period}'


def policies_for(settings: Settings) -> tuple[Policy, ...]:
    """The limits ``settings`` ask for, writes first (the narrower one is checked first).

    Raises ValueError, naming the variable, for a value that is not a limit."""
    found: list[Policy] = []
    write_text = settings.write_rate_limit
    if not write_text.strip() and settings.env == "production":
        write_text = PRODUCTION_WRITE_LIMIT
    writes = parse_rate(write_text, "EVENTAPI_WRITE_RATE_LIMIT")
    if writes is not None:
        found.append(Policy("writes", writes, writes_only=True))
    everything = parse_rate(settings.rate_limit, "EVENTAPI_RATE_LIMIT")
    if everything is not None:
        found.append(Policy("default", everything, writes_only=False))
    return tuple(found)
