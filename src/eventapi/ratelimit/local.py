"""Token buckets in process memory, one per client, for one Rate.

Each bucket is kept as GCRA (the generic cell rate algorithm) keeps it: one number, the
time at which the bucket would be full again (its "theoretical arrival time", TAT). A
request is let through if taking one token leaves the TAT no more than one period ahead of
now, and then pushes it one interval (period / count) further. This is exactly a bucket of
``count`` tokens refilled at ``count / period`` per second, in one float per client.

A client whose bucket is full again is the same as a client never seen, so its entry can go;
the table is swept when it grows past ``max_clients``, and if every entry is still in use
then (a flood of addresses), the oldest quarter is dropped: those clients start again with
a full bucket, which errs on the side of serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from eventapi.ratelimit.rates import Rate

# Room for rounding: the count-th token of a burst must fit however the floats fall.
EPSILON = 1e-9


class LocalBuckets:
    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.rate = rate
        self._interval = rate.interval
        self._horizon = rate.period + rate.interval * EPSILON
        self._clock = clock
        self._max = max_clients
        self._tat: dict[str, float] = {}

    def take_now(self, client: str) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there is."""
        now = self._clock()
        tat = self._tat.get(client, now)
        if tat < now:
            tat = now
        tat += self._interval
        ahead = tat - now
        if ahead > self._horizon:
            return ahead - self.rate.period
        self._tat[client] = tat
        if len(self._tat) > self._max:
            self._sweep(now)
        return 0.0

    async def take(self, client: str) -> float:
        """The same as take_now (the interface the middleware sees; never waits)."""
        return self.take_now(client)

    def __len__(self) -> int:
        return len(self._tat)

    def _sweep(self, now: float) -> None:
        self._tat = {client: tat for client, tat in self._tat.items() if tat > now}
        excess = len(self._tat) - self._max * 3 // 4
        if excess > 0:
            for client in list(self._tat)[:excess]:
                del self._tat[client]
