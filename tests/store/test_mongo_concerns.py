"""The MongoDB store writes with majority and reads from the primary whatever the URL asks:
the cache's never-stale promise needs reads that see every acknowledged write, and an
acknowledged write must survive a failover. (No server is needed: the client is lazy.)"""

from __future__ import annotations

from pymongo import ReadPreference

from eventapi.storage.mongo import MongoEventStore


async def test_majority_writes_and_primary_reads_override_the_url() -> None:
    url = "mongodb://127.0.0.1:1/shop?w=1&readPreference=secondaryPreferred"
    store = await MongoEventStore.open(url, timeout=0.05)  # start-up finds no server: logged
    try:
        events = store._events
        assert events.write_concern.document == {"w": "majority"}
        assert events.read_preference == ReadPreference.PRIMARY
        assert events.database.name == "shop"
    finally:
        await store.close()
