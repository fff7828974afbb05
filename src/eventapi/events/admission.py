"""How many uncached list queries run at once: per process, and per client.

A list page the cache cannot answer costs a store query whose price grows with the data
(a filter, a sort, a search over every row), while an item GET costs one indexed lookup.
Without a bound, a few clients sending unique (so uncached) list queries as fast as they
can keep every reader connection and the CPU busy, and everybody's requests queue behind
them. So a process runs at most ``per_process`` such queries at once and a client (its
configured API key, else its address after trusted proxies: http/caller.py) at most
``per_client``; one more is refused at once, not
queued: ``TooManyListQueries`` (429) for the client over its share, ``ListQueriesBusy``
(503) when the process is full. Both carry ``Retry-After``. Cache hits never pass here,
nor do item reads and writes. A page of the change feed (GET /api/changes: up to a thousand
changes and their events, read from the store) counts as one such query.

The admission is taken by the flight that loads the page (cache/readthrough.py), so
requests for the same page that join that flight share its admission and its answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from eventapi.errors import ListQueriesBusy, TooManyListQueries


class ListAdmission:
    def __init__(self, per_process: int, per_client: int) -> None:
        self.per_process = per_process
        self.per_client = per_client
        self.running = 0
        # Only clients with a query running: bounded by per_process entries.
        self._by_client: Counter[str] = Counter()

    def refusal(self, client: str) -> TooManyListQueries | ListQueriesBusy | None:
        """What ``admit(client)`` would raise now (None: it would admit), without taking a
        place: the edge asks before it parses a query (http/fastpath.py)."""
        if self._by_client[client] >= self.per_client:
            return TooManyListQueries(self.per_client)
        if self.running >= self.per_process:
            return ListQueriesBusy(self.per_process)
        return None

    @contextmanager
    def admit(self, client: str) -> Iterator[None]:
        if (refused := self.refusal(client)) is not None:
            raise refused
        self.running += 1
        self._by_client[client] += 1
        try:
            yield
        finally:
            self.running -= 1
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]
