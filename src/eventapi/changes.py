"""The change log: a durable record of every write, kept by the store, read by the cache
and by clients that follow the events.

Every write to the store also records which event it changed, and how (created, updated,
deleted), under a sequence number (``seq``) that rises in commit order. The record is
written with the write itself (SQLite: the same transaction) or just before it (MongoDB:
an intent), so it survives whatever happens to the process that wrote it. Every server
process reads the log on a timer and applies to the cache what the cache has not applied
yet (cache/relay.py): an invalidation that could not be delivered at write time (Redis
unreachable, writer killed) is delivered later instead of being lost. This is how
Facebook's memcache is kept coherent (NSDI 2013: invalidations driven by the database's
commit log). Clients read the same log through GET /api/changes and its live stream
(follow/), each change with the event as it is now.

How long the log keeps records is a setting (Retention); the relay's needs do not depend
on it: the newest RELAY_FLOOR records are always kept, and a relay further behind than it
retires every cache entry instead of replaying each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

# A change with no event id: any event may have changed (a bulk write of a release before
# per-event records; the relay retires everything, a follower must sync again).
EVERYTHING: str | None = None

Kind = Literal["created", "updated", "deleted"]

# The log always keeps at least this many of its newest records, whatever Retention says.
RELAY_FLOOR = 10_000


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the log keeps a record for followers: while it is younger than ``seconds``
    and among the newest ``records``; the newest RELAY_FLOOR are kept in any case."""

    seconds: float = 7 * 24 * 3600.0
    records: int = 1_000_000

    def prunable(self, head: int, first_young: int | None) -> int:
        """The highest seq that may go, given the newest seq and the first record younger
        than ``seconds`` (None: none is)."""
        by_age = head if first_young is None else first_young - 1
        return min(head - RELAY_FLOOR, max(by_age, head - self.records))


DEFAULT_RETENTION = Retention()


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    event_id: str | None  # None: EVERYTHING
    # None: written by a release that did not record it (or an EVERYTHING record).
    kind: Kind | None = None


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    changes: Sequence[Change]  # in seq order, all with seq > the ``after`` asked for
    # Every change up to ``head`` is recorded and settled: its write has finished or failed.
    # Where a record commits with its write that is the newest record; an intent (written
    # before its write) settles when its write has finished, or after the store timeout,
    # and a relay applies a change above ``head`` again on every pass until it has.
    head: int
    # True when records after ``after`` were pruned: the batch cannot say what changed.
    gap: bool = False


class ChangeFeed(Protocol):
    """What the relay, and the processes' change watch, need of a store."""

    async def changes_since(self, after: int, limit: int) -> ChangeBatch: ...
