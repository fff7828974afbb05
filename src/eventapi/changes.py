"""The change log: a durable record of every write, kept by the store, read by the cache.

Every write to the store also records which event it changed, under a sequence number
(``seq``) that rises in commit order. The record is written with the write itself (SQLite:
the same transaction) or just before it (MongoDB: an intent), so it survives whatever
happens to the process that wrote it. Every server process reads the log on a timer and
applies to the cache what the cache has not applied yet (cache/relay.py): an invalidation
that could not be delivered at write time (Redis unreachable, writer killed) is delivered
later instead of being lost. This is how Facebook's memcache is kept coherent (NSDI 2013:
invalidations driven by the database's commit log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# A change with no event id: any event may have changed (bulk insert, delete all).
EVERYTHING: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    event_id: str | None  # None: EVERYTHING


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    changes: Sequence[Change]  # in seq order, all with seq > the ``after`` asked for
    # Every change up to ``head`` is recorded and settled: its write has finished or failed.
    # Where a record commits with its write that is the newest record; an intent (written
    # before its write) settles only after the store timeout, and a relay applies a change
    # above ``head`` again on every pass until it has.
    head: int
    # True when records after ``after`` were pruned: the batch cannot say what changed.
    gap: bool = False


class ChangeFeed(Protocol):
    """What the relay needs of a store."""

    async def changes_since(self, after: int, limit: int) -> ChangeBatch: ...
