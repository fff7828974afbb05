"""The upgrade as production runs it: `eventapi serve` processes started at once on the
previous release's SQLite file upgrade it exactly once, and a server or command of this
release refuses a database a newer release wrote, in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from eventapi.storage import sqlite_schema
from tests.store.upgrade.fixtures import copy_sqlite, manifest
from tests.support.server import EVENTAPI, cluster, run
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

UPGRADED = "upgraded the SQLite database"


def old_database(tmp_path: Path) -> Path:
    """A copy of the previous release's database, named as the settings take a file."""
    return copy_sqlite(tmp_path).rename(tmp_path / "app.db")


def test_servers_starting_at_once_on_an_old_database_upgrade_it_once(tmp_path: Path) -> None:
    db = old_database(tmp_path)
    env = server_env(db, "memory://", False)  # info: the upgrade's log line is written
    recorded = manifest()["stores"]["sqlite"]["events"]
    with cluster(tmp_path, env, names=["A", "B", "C"], at_once=True) as servers:
        for server in servers:
            listed = httpx.get(f"{server.url}/api/events", params={"limit": 1}, timeout=10)
            assert listed.headers["x-total-count"] == str(len(recorded))
        logs = [server.output() for server in servers]
    assert sum(log.count(UPGRADED) for log in logs) == 1, logs
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION


@pytest.mark.parametrize("command", [["serve"], ["export"], ["seed", "--count"]])
def test_a_newer_database_is_refused_in_one_line(tmp_path: Path, command: list[str]) -> None:
    db = old_database(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")

    done = run([EVENTAPI, *command], server_env(db), tmp_path)

    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "written by a newer eventapi" in lines[0]
    assert "Traceback" not in done.stderr
    with sqlite3.connect(db) as conn:  # untouched
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION + 1
