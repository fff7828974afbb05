"""The list query strings the route has validated, byte for byte, and what each validated to:
the read edge (http/fastpath.py) answers only those itself, so it never parses a query and
cannot read one differently from the route."""

from __future__ import annotations

from eventapi.events.schemas import EventQuery


class KnownQueries:
    """Raw list query strings and what the route validated each to, at most ``size`` of
    them (the oldest learned goes first): bounded, whatever clients send."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._known: dict[bytes, EventQuery] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, raw: bytes) -> EventQuery | None:
        return self._known.get(raw)

    def learn(self, raw: bytes, query: EventQuery) -> None:
        if raw not in self._known and len(self._known) >= self.size:
            del self._known[next(iter(self._known))]
        self._known[raw] = query
