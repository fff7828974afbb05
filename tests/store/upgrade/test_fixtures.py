"""The upgrade fixtures are what their manifest says.

Read with the standard library only (sqlite3, json): nothing of the work tree's eventapi is
imported, so these hold whatever the next release's storage code does. load_mongo is
checked on mongomock-motor.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.store.upgrade.fixtures import (
    EXPORT,
    FIXTURES,
    MANIFEST,
    MONGO,
    PREVIOUS_RELEASE,
    SQLITE,
    copy_sqlite,
    load_mongo,
    manifest,
    previous_release_src,
)

FILES = (SQLITE, MONGO, EXPORT, MANIFEST)


@pytest.fixture(scope="module")
def made() -> dict[str, Any]:
    return manifest()


@contextlib.contextmanager
def opened(path: Path, *, read_only: bool = True) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    with contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as conn:
        conn.row_factory = sqlite3.Row
        yield conn


def plain(value: Any) -> Any:
    """Canonical Extended JSON, as the standard library reads it, to plain values:
    ObjectIds to hex, numbers to numbers, dates to milliseconds since the epoch."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == {"$oid"}:
        return value["$oid"]
    if value.keys() == {"$numberInt"} or value.keys() == {"$numberLong"}:
        return int(next(iter(value.values())))
    if value.keys() == {"$numberDouble"}:
        return float(value["$numberDouble"])
    if value.keys() == {"$date"}:
        return plain(value["$date"])
    return {name: plain(item) for name, item in value.items()}


@pytest.fixture(scope="module")
def mongo_dump() -> dict[str, Any]:
    dump: dict[str, Any] = plain(json.loads(MONGO.read_text(encoding="utf-8")))
    return dump


def test_the_fixtures_are_of_the_previous_release(made: dict[str, Any]) -> None:
    assert made["previous_release"] == PREVIOUS_RELEASE
    assert made["files"] == {"sqlite": SQLITE.name, "mongodb": MONGO.name, "export": EXPORT.name}
    assert all(path.is_file() for path in FILES)
    assert sum(path.stat().st_size for path in FILES) < 300_000
    # One self-contained database file: no WAL or shared memory left beside it.
    assert sorted(path.name for path in FIXTURES.iterdir()) == sorted(p.name for p in FILES)


def test_both_stores_hold_the_same_events(made: dict[str, Any]) -> None:
    sqlite, mongodb = made["stores"]["sqlite"], made["stores"]["mongodb"]
    assert len(sqlite["events"]) == len(mongodb["events"]) == made["history"]["events"] == 40
    assert sqlite["labels"].keys() == mongodb["labels"].keys()
    for label, event_id in sqlite["labels"].items():
        other = mongodb["events"][mongodb["labels"][label]]
        assert {**sqlite["events"][event_id], "id": None} == {**other, "id": None}, label
    # Imported events keep their ids; deleted ones are gone.
    assert sqlite["labels"]["import-1"] == mongodb["labels"]["import-1"]
    for store in (sqlite, mongodb):
        assert not set(store["deleted"].values()) & set(store["events"])


def test_sqlite_events_are_the_manifests(tmp_path: Path, made: dict[str, Any]) -> None:
    expected = made["stores"]["sqlite"]
    with opened(copy_sqlite(tmp_path)) as conn:
        rows = conn.execute("SELECT id, date_naive, version FROM events ORDER BY id").fetchall()
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 40
    assert [row["id"] for row in rows] == sorted(expected["events"]) == list(expected["events"])
    assert {row["id"]: row["version"] for row in rows} == expected["versions"]
    for row in rows:  # aware dates are rendered in UTC ("Z"), naive ones with no offset
        rendered = expected["events"][row["id"]]["date"]
        assert rendered.endswith("Z") == (row["date_naive"] == 0), rendered


def test_sqlite_change_log_is_the_manifests(tmp_path: Path, made: dict[str, Any]) -> None:
    expected = made["stores"]["sqlite"]
    with opened(copy_sqlite(tmp_path)) as conn:
        changes = [
            {"seq": row["seq"], "event_id": row["event_id"]}
            for row in conn.execute("SELECT seq, event_id FROM changes ORDER BY seq")
        ]
        head = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    assert changes == expected["changes"]
    assert head[0] == expected["head_seq"] == changes[-1]["seq"]
    assert any(change["event_id"] is None for change in changes)  # the import's record


def test_sqlite_idempotency_records_are_the_manifests(tmp_path: Path, made: dict[str, Any]) -> None:
    expected = made["stores"]["sqlite"]
    with opened(copy_sqlite(tmp_path)) as conn:
        rows = [
            dict(row)
            for row in conn.execute(
                "SELECT scope, key, fingerprint, event_id, created_at, response "
                "FROM idempotency ORDER BY scope, key"
            )
        ]
    assert rows == expected["idempotency"]
    assert {row["scope"] for row in rows} == set(made["scopes"].values())
    for row in rows:
        assert json.loads(row["response"])["id"] == row["event_id"]


def test_sqlite_file_is_whole(tmp_path: Path, made: dict[str, Any]) -> None:
    copy = copy_sqlite(tmp_path)
    assert copy.parent == tmp_path
    assert copy.read_bytes() == SQLITE.read_bytes()
    with opened(copy, read_only=False) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # The search index agrees with its content (raises if not).
        conn.execute("INSERT INTO events_search (events_search) VALUES ('integrity-check')")
        counts = dict(conn.execute("SELECT scope, events FROM event_counts").fetchall())
        assert conn.execute("SELECT count(*) FROM events_search").fetchone()[0] == 40
    assert counts == made["stores"]["sqlite"]["event_counts"]
    assert counts["*"] == 40


def test_mongo_dump_is_the_manifests(mongo_dump: dict[str, Any], made: dict[str, Any]) -> None:
    expected = made["stores"]["mongodb"]
    collections = mongo_dump["collections"]
    assert mongo_dump["database"] == "eventapi"
    assert sorted(collections) == ["changes", "events", "idempotency"]
    assert {name: len(c["documents"]) for name, c in collections.items()} == (
        expected["collections"]
    )

    events = collections["events"]["documents"]
    assert [doc["_id"] for doc in events] == list(expected["events"])
    assert {doc["_id"]: doc["version"] for doc in events} == expected["versions"]

    changes = [
        {"seq": doc["_id"], "event_id": doc["event_id"]}
        for doc in collections["changes"]["documents"]
    ]
    assert changes == expected["changes"]
    assert expected["head_seq"] == changes[-1]["seq"]

    records = collections["idempotency"]["documents"]
    assert [doc["_id"] for doc in records] == sorted(
        f"{r['scope']}/{r['key']}" for r in expected["idempotency"]
    )
    by_id = {f"{r['scope']}/{r['key']}": r for r in expected["idempotency"]}
    for doc in records:
        record = by_id[doc["_id"]]
        assert (doc["fingerprint"], doc["event_id"], doc["created_at"], doc["response"]) == (
            record["fingerprint"],
            record["event_id"],
            record["created_at"],
            record["response"],
        )
        assert doc["state"] == record["state"] == "done"

    assert sorted(collections["events"]["indexes"]) == [
        "_id_",
        "category_key_1_date_1__id_1",
        "category_key_1_title_1__id_1",
        "date_1__id_1",
        "title_1__id_1",
    ]
    assert sorted(collections["changes"]["indexes"]) == ["_id_", "at_1"]
    assert sorted(collections["idempotency"]["indexes"]) == ["_id_", "created_at_1"]


def test_export_is_the_sqlite_events(made: dict[str, Any]) -> None:
    expected = made["stores"]["sqlite"]["events"]
    # Lines end at b"\n" only: a value may hold U+2028, which str.splitlines splits at.
    lines = EXPORT.read_bytes().split(b"\n")
    assert lines.pop() == b""
    rows = [json.loads(line) for line in lines]
    assert made["export"] == {"format": "jsonl", "of": "sqlite", "events": len(rows)}
    assert [row["id"] for row in rows] == list(expected)
    assert rows == list(expected.values())


async def test_load_mongo_recreates_the_database(
    mongo_dump: dict[str, Any], made: dict[str, Any]
) -> None:
    from mongomock_motor import AsyncMongoMockClient

    database: Any = AsyncMongoMockClient(tz_aware=True)["eventapi"]
    await load_mongo(database)

    for name, collection in mongo_dump["collections"].items():
        assert await database[name].count_documents({}) == len(collection["documents"])
        indexes = await database[name].index_information()
        assert sorted(indexes) == sorted(collection["indexes"]), name
    first = made["stores"]["mongodb"]["changes"][0]
    found = await database["changes"].find_one({"_id": first["seq"]})
    assert found is not None
    assert found["event_id"] == first["event_id"]


@pytest.mark.system  # runs git and tar (tests/conftest.py: processes need the mark)
def test_previous_release_src_is_that_release(tmp_path: Path) -> None:
    src = previous_release_src(tmp_path)
    assert src.is_relative_to(tmp_path)
    assert (src / "eventapi" / "__init__.py").is_file()
    assert (src / "eventapi" / "storage" / "sqlite.py").is_file()
