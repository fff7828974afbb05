"""The relay: applies the store's change log to a cache (see eventapi/changes.py).

Every server process runs it on a short timer and before it trusts a cache again after an
outage (guard.py). Any process can relay any change, so an invalidation that its writer
could not deliver (Redis unreachable from it, or the writer killed) reaches the cache as
soon as one live process can reach both. Applying a change twice is harmless, so several
processes relaying at once need no coordination.
"""

from __future__ import annotations

from typing import Any

from eventapi.cache.base import Cache
from eventapi.changes import ChangeFeed

# Records read per pass; a cache further behind than this is simply reset.
BATCH = 500


async def catch_up(cache: Cache[Any], feed: ChangeFeed) -> None:
    """Bring ``cache`` up to date with ``feed``: apply, or reset when the log cannot say."""
    mark = await cache.watermark()
    batch = await feed.changes_since(mark or 0, BATCH)
    if mark is None or batch.gap or len(batch.changes) == BATCH:
        await cache.reset(batch.head)
        return
    if batch.changes:
        # The watermark may not pass a change that has not settled: its write may still be
        # under way, so it is applied now and again on the next pass.
        through = max(mark, min(batch.changes[-1].seq, batch.head))
        await cache.catch_up(batch.changes, through)
