"""A write's precondition: If-Match (RFC 9110 13.1.1), tested against the strong ETag of the
event as it is now (cache/entry.py: strong_etag)."""

from __future__ import annotations

from dataclasses import dataclass


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
