"""A write's preconditions: If-Match (RFC 9110 13.1.1), tested against the strong ETag of the
event as it is now (cache/entry.py: strong_etag), and If-Unmodified-Since (13.1.4), against
its updated_at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A request's If-Match field (RFC 9110 13.1.1): ``*``, or a list of entity tags.

    ``*`` matches any current representation; a list matches if one of its tags is the
    current ETag by the strong comparison, so a weak tag (``W/"..."``) never matches. A
    field that is neither (empty, or not tags) matches nothing.
    """

    any: bool
    tags: frozenset[str]

    @classmethod
    def parse(cls, value: str) -> IfMatch:
        if value.strip() == "*":
            return cls(True, frozenset())
        return cls(False, frozenset(tag.strip() for tag in value.split(",")))

    def matches(self, etag: str) -> bool:
        """Whether the event whose current (strong) ETag is ``etag`` passes. A weak tag is
        never equal to a strong one: the strong comparison."""
        return self.any or etag in self.tags


@dataclass(frozen=True, slots=True)
class IfUnmodifiedSince:
    """A write's If-Unmodified-Since (RFC 9110 13.1.4): an HTTP date, so to the second.

    Two writes within one second cannot be told apart by it: If-Match (an ETag) can, and is
    what the API recommends; this is for clients that only keep dates.
    """

    moment: datetime  # aware

    @classmethod
    def parse(cls, value: str) -> IfUnmodifiedSince | None:
        """None for a value that is not an HTTP date: such a field is ignored (13.1.4)."""
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # "-0000": UTC, as RFC 5322 reads it
            moment = moment.replace(tzinfo=UTC)
        return cls(moment)

    def holds(self, modified: datetime | None) -> bool:
        """Whether an event last modified at ``modified`` passes; one with no modification
        date always does (the field is ignored for it, 13.1.4)."""
        return modified is None or modified.replace(microsecond=0) <= self.moment
