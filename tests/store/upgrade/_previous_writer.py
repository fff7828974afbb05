# mypy: ignore-errors
"""The writer of the upgrade fixtures: runs ONLY under PREVIOUS_RELEASE's own src/.

make_fixtures.py extracts that release's src/ from git history and starts this file in a
subprocess with PYTHONPATH=<that src> (``python -P``, so nothing else is put first on
sys.path). Every ``eventapi`` import below is therefore the previous release's code, not
the work tree's: this file is written against that release's API and is never imported by
the tests (hence no type checking: the work tree's eventapi is not what it runs with).

It writes the same deterministic history to that release's SqliteEventStore and to its
MongoEventStore (on mongomock-motor), then leaves in --out:

- previous.sqlite3: the SQLite database, its WAL checkpointed into it, in rollback-journal
  mode (no -wal or -shm beside it);
- previous.mongo.json: every collection of the mongomock database, documents and indexes,
  as canonical MongoDB Extended JSON;
- state.json: what each store holds (make_fixtures.py makes the manifest of it).

Only ObjectIds and times (idempotency records' created_at, change intents' at) differ from
one run to the next.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import platform
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

TIMEOUT = 10.0  # the stores' timeout: generous, nothing here should ever wait
DATABASE = "eventapi"  # the database MongoEventStore.open uses when the URL names none
API_KEY = b"upgrade-fixture-api-key-0123456789"  # the keyed scope: SHA-256 of an API key


def check_release(src: Path) -> None:
    """Fail unless ``eventapi`` is imported from ``src`` (the extracted previous release)."""
    import eventapi

    where = Path(eventapi.__file__).resolve()
    if not where.is_relative_to(src.resolve()):
        sys.exit(f"_previous_writer: eventapi comes from {where}, not from {src}: refusing")


# --- The history ---------------------------------------------------------------------------

LONG_DESCRIPTION = "".join(
    f"Paragraph {n:03}: the programme, the venue and the speakers, in detail. "
    for n in range(1, 100)
)[:4990].ljust(5000, ".")  # exactly 5000 characters: the longest a description may be
LONG_TITLE = ("A title of the longest length allowed " * 6)[:199] + "!"  # 200 characters

FULL = {
    "description": "Every optional field set",
    "location": "New York, NY",
    "category": "Technology",
    "organizer": "Event Corp",
}


def body(title: str, date: str, **optional: Any) -> dict[str, Any]:
    """A POST body as a client sends it (optional fields left out unless given)."""
    return {"title": title, "date": date, **optional}


# (label, POST body): created with store.create.
CREATES: list[tuple[str, dict[str, Any]]] = [
    # Naive dates: wall-clock time, returned as sent.
    ("naive-full", body("Team offsite", "2025-12-01T10:00:00", **FULL)),
    ("naive-minimal", body("Only what is required", "2025-12-02T09:00:00")),
    ("naive-no-seconds", body("Fireworks", "2025-07-04T21:30")),
    ("naive-zero-ms", body("Zero milliseconds", "2025-02-28T00:00:00.000")),
    ("naive-ms", body("Stopwatch start", "2025-03-04T05:06:07.890")),
    ("naive-us-truncated", body("Microseconds", "2025-03-04T05:06:07.123456")),
    ("leap-day", body("Leap day", "2024-02-29T12:00:00", category="Calendar")),
    ("earliest", body("Year one", "0001-01-01T00:00:00")),
    ("latest", body("Last millisecond", "9999-12-31T23:59:59.999")),
    # Aware dates: stored (and returned) in UTC.
    ("aware-plus2", body("Berlin brunch", "2025-06-01T09:30:00+02:00", **FULL)),
    ("aware-minus5", body("NYC late show", "2025-11-02T01:30:00-05:00")),
    ("aware-z", body("Zulu time", "2025-01-15T12:00:00Z")),
    ("aware-plus0545", body("Kathmandu tea", "2025-09-09T06:00:00+05:45")),
    ("aware-next-year", body("New Year in Rio", "2025-12-31T23:30:00-03:00")),
    ("aware-ms", body("Photo finish", "2025-03-04T05:06:07.001+01:00")),
    ("aware-earliest", body("Dawn of time", "0001-01-01T05:00:00+05:00")),
    # Text.
    (
        "unicode-accents",
        body(
            "Café crème à Zürich — fête",
            "2025-05-05T18:00:00",
            description="Crêpes, façade, naïve, Ærø, Øresund, señor, Šťastný",
            location="Zürich",
            category="Gastronomie",
            organizer="Zoë Ångström",
        ),
    ),
    (
        "unicode-cjk",
        body(
            "東京の夏祭り",
            "2025-08-15T19:00:00+09:00",
            description="花火大会と盆踊り。한국어도 있어요。中文描述。",
            location="東京都台東区",
            category="祭り",
            organizer="浅草観光連盟",
        ),
    ),
    (
        "unicode-emoji",
        body(
            "Launch party 🎉🚀",
            "2025-10-10T20:00:00",
            description="Flags 🇫🇷🇯🇵, a family 👨\u200d👩\u200d👧, skin tones 👍🏽, math "
            "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
            category="Party",
            organizer="👩\u200d💻 dev team",
        ),
    ),
    ("unicode-nfd", body("Cafe\u0301 (a decomposed é)", "2025-05-06T08:00:00")),
    ("unicode-casefold", body("Straße fest", "2025-05-07T12:00:00", category="Straße")),
    ("category-strasse", body("STRASSE party", "2025-05-08T12:00:00", category="STRASSE")),
    (
        "unicode-greek-turkish",
        body(
            "ΣΊΣΥΦΟΣ in İstanbul",
            "2025-04-01T10:00:00+03:00",
            location="İstanbul",
            category="Ελληνικά",
        ),
    ),
    ("unicode-rtl", body("مهرجان — פסטיבל", "2025-04-02T10:00:00", location="القاهرة")),
    ("padded", body("  Padded title \u3000", "2025-04-03T10:00:00", organizer=" Someone\t")),
    (
        "special-characters",
        body(
            "Quotes \"double\" 'single' `back` \\ slash",
            "2025-04-04T10:00:00",
            description="Line 1\nLine 2\tTabbed\r\nCRLF, and a \u2028 line separator",
            location="'; DROP TABLE events; --",
            category="%_wildcards_%",
            organizer='<b>HTML</b> & {"json": true}',
        ),
    ),
    ("long", body(LONG_TITLE, "2025-06-30T09:00:00", description=LONG_DESCRIPTION)),
    # Categories differing only in case.
    ("category-Music", body("Jazz night", "2025-03-01T20:00:00", category="Music")),
    ("category-music", body("Open mic", "2025-03-02T20:00:00", category="music")),
    ("category-MUSIC", body("Metal fest", "2025-03-03T20:00:00", category="MUSIC")),
    ("category-mUsIc", body("Choir", "2025-03-04T20:00:00", category="mUsIc")),
    # Each optional field alone.
    ("only-description", body("Described", "2025-01-01T00:00:00", description="Just this")),
    ("only-location", body("Located", "2025-01-02T00:00:00", location="Lisbon")),
    ("only-category", body("Categorised", "2025-01-03T00:00:00", category="Solo")),
    ("only-organizer", body("Organised", "2025-01-04T00:00:00", organizer="Ana")),
    ("all-set", body("Conference", "2025-09-01T09:00:00+00:00", **FULL)),
]

# (label, scope, Idempotency-Key, POST body): created with store.create_once. "keyed" is
# the scope of an API key (its SHA-256, hex).
OPEN = "open"  # eventapi.http.caller.OPEN_SCOPE, checked in write_all
ONCE: list[tuple[str, str, str, dict[str, Any]]] = [
    ("once-open-1", OPEN, "order-1001", body("Booked once", "2025-11-11T11:11:11.111", **FULL)),
    (
        "once-open-2",
        OPEN,
        "client/7/order-1002",  # a key with slashes: MongoDB's record _id is scope/key
        body("Key with slashes", "2025-11-12T11:00:00+01:00"),
    ),
    (
        "once-open-3",
        OPEN,
        "key with spaces ~!@#$%^&*()",
        body("Soon deleted", "2025-11-13T11:00:00", category="Ephemeral"),
    ),
    (
        "once-keyed-1",
        "keyed",
        "order-1001",  # the same key as once-open-1, in another scope
        body("Same key, other scope", "2025-11-14T11:00:00", location="Oslo"),
    ),
    ("once-keyed-2", "keyed", "k" * 255, body("Longest key 🔑", "2025-11-15T11:00:00-08:00")),
]


def imported(number: int, title: str, date: str, **optional: Any) -> dict[str, Any]:
    return {"id": f"65000000000000000000000{number}", **body(title, date, **optional)}


# The import path (store.insert_missing): events with their own ids, as a file gives them.
IMPORTED: list[tuple[str, dict[str, Any]]] = [
    ("import-1", imported(1, "Imported naive", "2023-09-01T10:00:00", **FULL)),
    ("import-2", imported(2, "Imported aware", "2023-09-02T10:00:00.250Z", category="music")),
    ("import-3", imported(3, "Imported minimal", "2023-09-03T10:00:00")),
    ("import-4", imported(4, "Imported, then deleted", "2023-09-04T10:00:00+02:00")),
]

# (label, "patch" with an EventUpdate body | "put" with an EventCreate body, body,
# conditional: the write passes the event's current version as expected_version).
UPDATES: list[tuple[str, str, dict[str, Any], bool]] = [
    (
        "naive-full",
        "patch",
        {"title": "Team offsite (moved)", "date": "2026-01-10T08:00:00+01:00"},  # naive->aware
        False,
    ),
    ("aware-plus2", "patch", {"date": "2025-06-01T09:30:00"}, False),  # aware -> naive
    ("category-Music", "patch", {"title": "Jazz night (sold out)", "category": "Jazz"}, False),
    ("all-set", "patch", {"description": None, "location": None}, True),  # cleared
    ("only-category", "patch", {"category": None}, False),
    (
        "unicode-cjk",
        "put",  # a full replace: description, location and organizer are cleared
        body("東京の夏祭り 2025", "2025-08-16T19:00:00+09:00", category="祭り"),
        False,
    ),
    ("import-2", "patch", {"organizer": "Imported, then edited"}, False),
    ("once-open-2", "patch", {"title": "Key with slashes (edited after its create)"}, False),
    ("naive-ms", "patch", {"date": "2025-03-04T05:06:07.891"}, True),
    ("naive-ms", "patch", {"location": "Stadium", "organizer": "Timing Ltd"}, True),
    ("unicode-emoji", "patch", {"category": "PARTY"}, False),
    ("naive-minimal", "put", body("Only what is required", "2025-12-02T09:00:00"), False),
]

# (label, conditional): deleted; a label twice is a second delete of a deleted event.
DELETES: list[tuple[str, bool]] = [
    ("category-MUSIC", False),
    ("only-location", False),
    ("once-open-3", False),  # its Idempotency-Key record stays, replaying the event
    ("import-4", False),
    ("aware-minus5", True),
    ("only-location", False),  # already gone: None (MongoDB still leaves an intent)
]


async def run_history(store: Any, keyed_scope: str) -> dict[str, Any]:
    """The history, on one store. Returns labels -> ids (living and deleted)."""
    from eventapi.errors import IdempotencyKeyReused
    from eventapi.events.schemas import EventCreate, EventRead, EventUpdate
    from eventapi.events.service import fingerprint
    from eventapi.events.store import Claim

    ids: dict[str, str] = {}
    for label, fields in CREATES:
        saved = await store.create(EventCreate.model_validate(fields))
        ids[label] = saved.event.id

    claims: dict[str, tuple[Claim, Any]] = {}
    for label, scope, key, fields in ONCE:
        data = EventCreate.model_validate(fields)
        real_scope = keyed_scope if scope == "keyed" else scope
        claim = Claim(real_scope, key, fingerprint(data), time.time())
        saved = await store.create_once(data, claim)
        assert not saved.replayed, label
        assert saved.seq > 0, label
        ids[label] = saved.event.id
        claims[label] = (claim, data)

    # A retry (same key, same body) replays; the key with another body is refused.
    for label in ("once-open-1", "once-keyed-2"):
        claim, data = claims[label]
        retry = Claim(claim.scope, claim.key, claim.fingerprint, time.time())
        again = await store.create_once(data, retry)
        assert again.replayed, label
        assert again.event.id == ids[label], label
    claim, data = claims["once-keyed-1"]
    other = EventCreate.model_validate({**data.model_dump(mode="json"), "title": "Other body"})
    try:
        reused = Claim(claim.scope, claim.key, fingerprint(other), time.time())
        await store.create_once(other, reused)
    except IdempotencyKeyReused:
        pass
    else:
        raise AssertionError("a reused key with another body was not refused")

    batch = [EventRead.model_validate(fields) for _, fields in IMPORTED]
    added = await store.insert_missing(batch)
    assert added == len(batch), added
    twice = await store.insert_missing(batch)  # an import run twice adds nothing
    assert twice == 0, twice
    for label, fields in IMPORTED:
        ids[label] = fields["id"]

    for label, kind, fields, conditional in UPDATES:
        if kind == "patch":
            changes = EventUpdate.model_validate(fields).changes()
        else:
            changes = EventCreate.model_validate(fields).model_dump()
        expected = None
        if conditional:
            expected = (await store.get_versioned(ids[label])).version
        saved = await store.update(ids[label], changes, expected_version=expected)
        assert saved is not None, label
        assert saved.seq > 0, label

    deleted: dict[str, str] = {}
    for label, conditional in DELETES:
        expected = None
        if conditional:
            expected = (await store.get_versioned(ids[label])).version
        seq = await store.delete(ids[label], expected_version=expected)
        assert (seq is None) == (label in deleted), label
        deleted[label] = ids[label]

    living = {label: event_id for label, event_id in ids.items() if label not in deleted}
    return {"labels": living, "deleted": deleted}


def history_counts() -> dict[str, int]:
    deleted = len({label for label, _ in DELETES})
    return {
        "created": len(CREATES),
        "created_once": len(ONCE),
        "replayed": 2,
        "refused_reused_key": 1,
        "imported": len(IMPORTED),
        "import_batches": 2,
        "updates": len(UPDATES),
        "deletes": len(DELETES),
        "deleted": deleted,
        "events": len(CREATES) + len(ONCE) + len(IMPORTED) - deleted,
    }


async def rendered(store: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """Every event as the release renders it (by id, in id order), and its version."""
    events = await store.scan(None, 10_000)
    versions = {}
    for event in events:
        versioned = await store.get_versioned(event.id)
        versions[event.id] = versioned.version
    return {event.id: event.model_dump(mode="json") for event in events}, versions


# --- SQLite --------------------------------------------------------------------------------


def finish_sqlite(path: Path) -> None:
    """After the store is closed (every connection of it: the journal mode cannot change
    while another holds the database): move the WAL into the main file and leave WAL mode
    (the release's Connections.open sets journal_mode=WAL on every open), so the fixture
    is one self-contained file."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "checkpoint blocked"
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        assert mode == "delete", mode
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for suffix in ("-wal", "-shm"):
        leftover = path.with_name(path.name + suffix)
        assert not leftover.exists(), leftover


def sqlite_state(path: Path) -> dict[str, Any]:
    """The change log, idempotency records and derived tables, read from the file."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        changes = [
            {"seq": row["seq"], "event_id": row["event_id"]}
            for row in conn.execute("SELECT seq, event_id FROM changes ORDER BY seq")
        ]
        head = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        keys = [
            {
                "scope": row["scope"],
                "key": row["key"],
                "fingerprint": row["fingerprint"],
                "event_id": row["event_id"],
                "created_at": row["created_at"],
                "response": row["response"],
            }
            for row in conn.execute("SELECT * FROM idempotency ORDER BY scope, key")
        ]
        counts = {
            row["scope"]: row["events"]
            for row in conn.execute("SELECT scope, events FROM event_counts ORDER BY scope")
        }
        schema = [
            {"type": row["type"], "name": row["name"], "table": row["tbl_name"]}
            for row in conn.execute(
                "SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name"
            )
        ]
        columns = [row["name"] for row in conn.execute("PRAGMA table_info(events)")]
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    return {
        "changes": changes,
        "head_seq": int(head[0]) if head else 0,
        "idempotency": keys,
        "event_counts": counts,
        "events_columns": columns,
        "user_version": user_version,
        "schema": schema,
    }


async def write_sqlite(path: Path, keyed_scope: str) -> dict[str, Any]:
    from eventapi.storage.sqlite import SqliteEventStore

    store = await SqliteEventStore.open(str(path), TIMEOUT)
    try:
        state = await run_history(store, keyed_scope)
        state["events"], state["versions"] = await rendered(store)
    finally:
        await store.close()
    finish_sqlite(path)
    return {**state, **sqlite_state(path)}


# --- MongoDB (mongomock-motor) -------------------------------------------------------------


async def write_mongo(keyed_scope: str) -> tuple[dict[str, Any], str]:
    """The history on MongoEventStore; what it holds, and the dump of its database."""
    from bson import json_util
    from mongomock_motor import AsyncMongoMockClient

    from eventapi.storage.mongo import MongoEventStore

    # tz_aware=True, as the release's MongoEventStore.open configures its client.
    client: Any = AsyncMongoMockClient(tz_aware=True)
    database = client[DATABASE]
    store = MongoEventStore(database["events"], TIMEOUT)
    await store._ensure_indexes()  # what MongoEventStore.open does first
    state = await run_history(store, keyed_scope)
    state["events"], state["versions"] = await rendered(store)

    collections: dict[str, Any] = {}
    for name in sorted(await database.list_collection_names()):
        documents = [doc async for doc in database[name].find({})]
        documents.sort(key=lambda doc: doc["_id"])
        indexes = await database[name].index_information()
        collections[name] = {
            "indexes": {index: indexes[index] for index in sorted(indexes)},
            "documents": documents,
        }
    dump = {"database": DATABASE, "collections": collections}
    text = json_util.dumps(
        dump, json_options=json_util.CANONICAL_JSON_OPTIONS, indent=1, ensure_ascii=False
    )

    changes = collections["changes"]["documents"]
    keys = []
    for doc in collections["idempotency"]["documents"]:
        scope, key = doc["_id"].split("/", 1)  # a scope ("open" or hex) has no "/"
        keys.append(
            {
                "scope": scope,
                "key": key,
                "fingerprint": doc["fingerprint"],
                "event_id": str(doc["event_id"]),
                "created_at": doc["created_at"],
                "response": doc.get("response"),
                "state": doc["state"],
            }
        )
    keys.sort(key=lambda record: (record["scope"], record["key"]))
    held = {
        **state,
        "changes": [{"seq": doc["_id"], "event_id": doc["event_id"]} for doc in changes],
        "head_seq": max((doc["_id"] for doc in changes), default=0),
        "idempotency": keys,
        "collections": {name: len(c["documents"]) for name, c in collections.items()},
    }
    return held, text + "\n"


# --- Main ----------------------------------------------------------------------------------


def same_history(sqlite: dict[str, Any], mongo: dict[str, Any]) -> None:
    """Both stores hold the same events (ids apart: each store makes its own)."""
    assert sqlite["labels"].keys() == mongo["labels"].keys()
    for label, sqlite_id in sqlite["labels"].items():
        one = dict(sqlite["events"][sqlite_id], id=None)
        other = dict(mongo["events"][mongo["labels"][label]], id=None)
        assert one == other, (label, one, other)


async def write_all(out: Path) -> tuple[dict[str, Any], str]:
    from eventapi.http.caller import OPEN_SCOPE
    from eventapi.settings import key_digest

    assert OPEN_SCOPE == OPEN, OPEN_SCOPE
    keyed_scope = key_digest(API_KEY).hex()
    sqlite = await write_sqlite(out / "previous.sqlite3", keyed_scope)
    mongo, dump = await write_mongo(keyed_scope)
    same_history(sqlite, mongo)
    assert len(sqlite["events"]) == history_counts()["events"]
    state = {
        "history": history_counts(),
        "scopes": {"open": OPEN, "keyed": keyed_scope},
        "stores": {"sqlite": sqlite, "mongodb": mongo},
    }
    return state, dump


def versions() -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    for package in ("pydantic", "pymongo", "mongomock", "mongomock-motor"):
        found[package] = importlib.metadata.version(package)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", type=Path, required=True, help="the previous release's src/")
    parser.add_argument("--out", type=Path, required=True, help="an empty folder")
    args = parser.parse_args()
    check_release(args.src)
    state, dump = asyncio.run(write_all(args.out))
    (args.out / "previous.mongo.json").write_text(dump, encoding="utf-8")
    state["made_with"] = versions()
    text = json.dumps(state, indent=1, ensure_ascii=False)
    (args.out / "state.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
