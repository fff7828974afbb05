"""A rolling upgrade: a server of the previous release (its own code, from git history) and
one of this release share one SQLite database and one Redis while several writers of the
same events write through both and readers read through both. No read is stale, judged in
the store's commit order as in test_concurrent_writers.py.

What makes it hold (cache/entry.py): both releases use the same keys, so an invalidation by
either reaches every entry; entries carry their format, and this release never serves one
of the previous format (it reads the store instead), while the previous release reads this
format's entries as its own. The new server upgrades the database while the old one runs
on it (storage/sqlite_schema.py: every upgrade only adds).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.writers import install
from eventapi.storage.sqlite_schema import SCHEMA_VERSION
from tests.cache.processes.hot_writes import Hot, assert_never_stale, cache_warnings, list_queries
from tests.cache.processes.test_concurrent_writers import HOT_EVENTS, hot_rounds
from tests.store.upgrade.fixtures import LAST_RELEASE, previous_release_src
from tests.support.cluster import clients
from tests.support.redis_server import RedisServer
from tests.support.server import serve
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

HOT = Hot(
    writers=4,
    rounds=100,
    seconds=5.0,
    readers=8,
    lists=list_queries(4),
    min_rounds=4,
    min_reads=800,
)


def previous_release_env(env: dict[str, str], src: Path) -> dict[str, str]:
    """``env`` running the previous release's code: its src/ first on the path, and not
    measured for coverage (its files are not this release's)."""
    kept = {k: v for k, v in env.items() if not k.startswith("COVERAGE_")}
    return {**kept, "PYTHONPATH": str(src)}


async def test_old_and_new_servers_sharing_a_database_and_redis_never_serve_a_stale_read(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url, cache_relay_interval=0.25)
    old_env = previous_release_env(env, previous_release_src(tmp_path, LAST_RELEASE))
    with ExitStack() as stack:
        old = stack.enter_context(serve(tmp_path, "old", old_env))
        old.wait_ready()  # the previous release makes the database
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1
        new = stack.enter_context(serve(tmp_path, "new", env))
        new.wait_ready()  # and this one upgrades it while the old one runs on it
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        install(db)
        async with clients([old, new], names=["old", "new"]) as apis:
            recorder, outcome = await hot_rounds(db, apis, hot=HOT)
            events = [w.event for w in recorder.writes[:HOT_EVENTS]]  # the seeded ones
            # Each release answers in its own shape: the new one with the new fields.
            old_body = (await apis[0].http.get(f"/api/events/{events[0]}")).json()
            new_body = (await apis[1].http.get(f"/api/events/{events[0]}")).json()
    judgement = recorder.judge(db)
    summary = f"{recorder.summary(judgement)}\n{outcome.summary()}\n{cache_warnings([old, new])}"
    print(summary)
    assert_never_stale(judgement, outcome, summary)
    report = judgement.report
    assert outcome.rounds >= HOT.min_rounds, summary
    assert set(Counter(w.via for w in report.writes)) == {"old", "new"}
    assert set(Counter(r.via for r in report.reads)) == {"old", "new"}
    assert Counter((r.kind, r.cache) for r in report.reads)["item", "HIT"] > 0
    assert "status" in new_body
    assert new_body["updated_at"] is not None  # old writes moved it too (events_touch)
    assert "status" not in old_body or old_body == new_body  # a HIT of the new format
