"""SQLite event store (WAL; see sqlite_pool.py for how connections are used): the
zero-setup embedded default. Every write and its change-log record commit together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bson import ObjectId

from eventapi.changes import DEFAULT_RETENTION, Change, ChangeBatch, Kind, Retention
from eventapi.errors import IdempotencyKeyReused, StoreUnavailable
from eventapi.events import cursors, dates
from eventapi.events.schemas import (
    EventCreate,
    EventFields,
    EventPage,
    EventQuery,
    EventRead,
    fields_of,
    merged,
    occurrence_of,
)
from eventapi.events.store import (
    IDEMPOTENCY_TTL,
    Backend,
    Claim,
    Saved,
    VersionConflict,
    Versioned,
)
from eventapi.storage import sqlite_query as sql
from eventapi.storage import sqlite_schema
from eventapi.storage.guarded import guarded
from eventapi.storage.sqlite_pool import Connections, Lane
from eventapi.storage.sqlite_rows import (
    COLUMNS,
    SELECTED,
    occurrence_rows,
    to_event,
    values,
)

T = TypeVar("T")
log = logging.getLogger("eventapi.storage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    description  TEXT,
    date_utc     TEXT NOT NULL,     -- fixed-width ISO 8601 in UTC: sorts as text
    date_naive   INTEGER NOT NULL,  -- 1: return without a UTC offset
    location     TEXT,
    category     TEXT,
    category_key TEXT,              -- casefolded category, for case-insensitive equality
    organizer    TEXT,
    version      INTEGER NOT NULL DEFAULT 0  -- seq of the last write's change record
);
CREATE INDEX IF NOT EXISTS events_by_date ON events (date_utc, id);
CREATE INDEX IF NOT EXISTS events_by_title ON events (title, id);
CREATE INDEX IF NOT EXISTS events_by_category ON events (category_key, date_utc, id);
-- A category's page sorted by title: read in order, not sorted each time (784 ms at 1M).
CREATE INDEX IF NOT EXISTS events_by_category_title ON events (category_key, title, id);
-- The change log (eventapi/changes.py). AUTOINCREMENT: a seq is never reused, even after
-- the newest records are pruned. event_id NULL: any event may have changed.
CREATE TABLE IF NOT EXISTS changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT
);
-- Idempotency-Key records: written in the transaction that creates the event, so there is
-- never one without the other (no "in flight" state is ever committed).
CREATE TABLE IF NOT EXISTS idempotency (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    response    TEXT NOT NULL,  -- the event as created (EventRead JSON): the replayed body
    created_at  REAL NOT NULL,  -- time.time()
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_at);
-- Text search (q=): a trigram index of the casefolded title, description and location, so
-- that a substring of at least 3 characters is found through the index, not by calling a
-- Python function on every row. Kept by triggers, in the writing transaction itself; the
-- triggers call eventapi_casefold, which every connection of the store registers (_setup),
-- so a write to events from another program fails rather than leave the index behind.
CREATE VIRTUAL TABLE IF NOT EXISTS events_search USING fts5(
    title, description, location, tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER IF NOT EXISTS events_search_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_search (rowid, title, description, location) VALUES (new.rowid,
        eventapi_casefold(new.title), eventapi_casefold(new.description),
        eventapi_casefold(new.location));
END;
CREATE TRIGGER IF NOT EXISTS events_search_update
AFTER UPDATE OF title, description, location ON events BEGIN
    DELETE FROM events_search WHERE rowid = old.rowid;
    INSERT INTO events_search (rowid, title, description, location) VALUES (new.rowid,
        eventapi_casefold(new.title), eventapi_casefold(new.description),
        eventapi_casefold(new.location));
END;
CREATE TRIGGER IF NOT EXISTS events_search_delete AFTER DELETE ON events BEGIN
    DELETE FROM events_search WHERE rowid = old.rowid;
END;
-- How many events there are, in all ('*') and per casefolded category ('category:' || key):
-- the X-Total-Count of a list page with no filter, or only category=, is read here rather
-- than counted (at 1M events counting every row was 70% of the default page's time). Kept
-- by triggers, in the writing transaction, like the search index.
CREATE TABLE IF NOT EXISTS event_counts (
    scope  TEXT PRIMARY KEY,
    events INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS events_count_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_counts SELECT '*', 1 WHERE true
        ON CONFLICT (scope) DO UPDATE SET events = events + 1;
    INSERT INTO event_counts SELECT 'category:' || new.category_key, 1
        WHERE new.category_key IS NOT NULL
        ON CONFLICT (scope) DO UPDATE SET events = events + 1;
END;
CREATE TRIGGER IF NOT EXISTS events_count_update AFTER UPDATE OF category_key ON events
WHEN old.category_key IS NOT new.category_key BEGIN
    UPDATE event_counts SET events = events - 1 WHERE scope = 'category:' || old.category_key;
    DELETE FROM event_counts WHERE scope = 'category:' || old.category_key AND events = 0;
    INSERT INTO event_counts SELECT 'category:' || new.category_key, 1
        WHERE new.category_key IS NOT NULL
        ON CONFLICT (scope) DO UPDATE SET events = events + 1;
END;
CREATE TRIGGER IF NOT EXISTS events_count_delete AFTER DELETE ON events BEGIN
    UPDATE event_counts SET events = events - 1
        WHERE scope IN ('*', 'category:' || old.category_key);
    DELETE FROM event_counts WHERE scope = 'category:' || old.category_key AND events = 0;
END;
-- Set once the search index and the counts hold every event (databases made before them
-- get them at open).
CREATE TABLE IF NOT EXISTS derived_ready (done INTEGER NOT NULL);
"""
_SEARCH_EVERY_EVENT = (
    "INSERT INTO events_search (rowid, title, description, location) "
    "SELECT rowid, eventapi_casefold(title), eventapi_casefold(description), "
    "eventapi_casefold(location) FROM events"
)
# What load_new sets aside while it fills an empty table and then puts back as it was: the
# secondary indexes (built once from the whole table, not updated row by row) and the
# triggers that index and count one new event (the whole table is indexed and counted at
# once).
_SET_ASIDE = (
    "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
    " AND (type = 'index' OR name IN ('events_search_insert', 'events_count_insert'))"
)
# How the search index's segments (FTS5 writes one per transaction) get merged. Left to
# FTS5 (automerge), a write that fills a level merges it there and then: at 1M events one
# write in a few hundred took 20 s, and interrupted at the store timeout and rolled back,
# it was started again, and abandoned again, by every write after it. So writes do not
# merge (automerge off), but for FTS5's crisis merge of a level that reached 64 segments
# (in practice the small ones of level 0; some merging must stay in the writes, as FTS5
# refuses writes past 2,000 segments in all: "database or disk is full"). The store merges
# in the background instead (_merge_search), MERGE_PAGES pages at a time (at most about
# 50 ms at 1M events) in write transactions of its own: about 300 pages a second while
# there is work, enough for tens of writes a second. A load merges everything once, at
# its end ('optimize').
_SEARCH_MERGING = ("automerge", 0), ("crisismerge", 64)
# While a load fills the index, fewer crisis merges (the load merges everything at its end):
# at 1M events it flushes about 2,000 segments, which 256 a level keeps well under FTS5's
# limit.
_LOAD_MERGING = ("automerge", 0), ("crisismerge", 256)
MERGE_PAGES = 16
_MERGE_IDLE = 1.0  # seconds between looks while there is nothing to merge
_MERGE_PAUSE = 0.05  # between two steps of work: writes get the lock in between
# Building the search index of an existing database at open, or loading a new one, may
# take a while (about a minute per million events): its own deadline, not the store timeout.
_BUILD_WITHIN = 3600.0

# The bound on one bulk write of `eventapi import` or `seed --clear` (a batch of thousands
# of events and their search index), which no request waits for: the store timeout is a
# request's bound.
BULK_TIMEOUT = 60.0
# How often the log is pruned (every this many records), and how many records one pruning
# removes at most: a shorter Retention set at a restart is caught up with in steps, never in
# one long hold of the write lock.
_PRUNE_EVERY = 1_000
_PRUNE_AT_MOST = 10 * _PRUNE_EVERY
# The version column came after the first databases were made: they get it at open.
_ADD_VERSION = "ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 0"
# The version of rows insert_missing has just inserted, until its change record has a seq.
_UNLOGGED = -1


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


def _insert(version: int | str, ignore: bool = False) -> str:
    """The INSERT of one event's COLUMNS, at ``version`` (a number, or ``?``)."""
    marks = ", ".join("?" * len(COLUMNS))
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    return f"{verb} INTO events ({', '.join(COLUMNS)}, version) VALUES ({marks}, {version})"


def _add_occurrences(conn: sqlite3.Connection, batch: Sequence[EventFields]) -> None:
    """The occurrences of the recurring events of a bulk insert (an event it skipped, an
    id that existed, adds none: the primary key keeps the existing event's)."""
    recurring = [row for e in batch if e["recurrence"] is not None for row in occurrence_rows(e)]
    if recurring:
        conn.executemany("INSERT OR IGNORE INTO occurrences VALUES (?, ?, ?)", recurring)


def _occurrence(row: sqlite3.Row) -> EventRead:
    """A row of an expanded page: the event itself, or one occurrence of a series."""
    event = to_event(row)
    if not row["o_series"]:
        return event
    return occurrence_of(event, datetime.fromisoformat(row["o_start"]).replace(tzinfo=UTC))


def _write_occurrences(conn: sqlite3.Connection, event: EventFields, fresh: bool) -> None:
    """The occurrence rows of ``event`` (``fresh``: it has none yet)."""
    if not fresh:
        conn.execute("DELETE FROM occurrences WHERE event_id = ?", (event["id"],))
    conn.executemany("INSERT INTO occurrences VALUES (?, ?, ?)", occurrence_rows(event))


def _search_config(conn: sqlite3.Connection, settings: Sequence[tuple[str, int]]) -> None:
    for name, value in settings:
        conn.execute("INSERT INTO events_search (events_search, rank) VALUES (?, ?)", (name, value))


def prepare(path: str, *, make_folder: bool = False) -> None:
    """Check SQLite can open the file (creating its folder first if ``make_folder``) and
    that a newer release did not write it; else one clear error line."""
    folder = Path(path).parent
    if path != ":memory:" and not folder.is_dir() and not make_folder:
        raise StoreUnavailable(
            f"cannot open the SQLite database {path!r}: its folder {str(folder)!r} does "
            "not exist (create it, or fix the path)"
        )
    try:
        if path != ":memory:" and make_folder:
            folder.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA schema_version")
            found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreUnavailable(f"cannot open the SQLite database {path!r}: {reason}") from None
    if found > sqlite_schema.SCHEMA_VERSION:
        raise sqlite_schema.newer(path, found)


def _has_version(conn: sqlite3.Connection) -> bool:
    return any(row["name"] == "version" for row in conn.execute("PRAGMA table_info(events)"))


def _derived_ready(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM derived_ready").fetchone() is not None


def _build_derived(conn: sqlite3.Connection) -> None:
    """Build the search index and the counts of a database made before them (in one write
    transaction, looking again there: of two processes opening it at once, the second
    waits for the first and then finds it done)."""
    if _derived_ready(conn):
        return
    _search_config(conn, _SEARCH_MERGING)
    conn.execute("DELETE FROM events_search")
    conn.execute(_SEARCH_EVERY_EVENT)
    conn.execute("INSERT INTO events_search (events_search) VALUES ('optimize')")
    _count_every_event(conn)
    conn.execute("INSERT INTO derived_ready VALUES (1)")


def _merge_step(conn: sqlite3.Connection) -> bool:
    """One bounded step of merging the search index; whether there was work to do (FTS5
    changes at least 2 rows when it merged anything)."""
    before = conn.total_changes
    conn.execute(
        "INSERT INTO events_search (events_search, rank) VALUES ('merge', ?)", (MERGE_PAGES,)
    )
    return conn.total_changes - before >= 2


def _count_every_event(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM event_counts")
    conn.execute("INSERT INTO event_counts SELECT '*', count(*) FROM events")
    conn.execute(
        "INSERT INTO event_counts SELECT 'category:' || category_key, count(*) FROM events"
        " WHERE category_key IS NOT NULL GROUP BY category_key"
    )


def _add_version(conn: sqlite3.Connection) -> None:
    """Add the version column to a database made before it existed (rows get version 0).
    Runs in a write transaction and looks again there, so of two processes opening one old
    database at once, the second waits for the first and then finds the column."""
    if not _has_version(conn):
        conn.execute(_ADD_VERSION)


def _versioned(row: sqlite3.Row) -> Versioned:
    return Versioned(to_event(row), int(row["version"]))


def _current(conn: sqlite3.Connection, event_id: str) -> sqlite3.Row | None:
    sql = f"SELECT {SELECTED}, version FROM events WHERE id = ?"
    row: sqlite3.Row | None = conn.execute(sql, (event_id,)).fetchone()
    return row


def _check(row: sqlite3.Row | None, expected_version: int | None) -> None:
    """In the write transaction, before the write: VersionConflict if the event is not at
    the expected version (None: any version will do)."""
    if row is not None and expected_version is not None and row["version"] != expected_version:
        raise VersionConflict(_versioned(row))


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=NORMAL")
    register_functions(conn)


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL function the store's triggers call: a program that writes to the events
    table on its own connection must register it too."""
    conn.create_function("eventapi_casefold", 1, _casefold, deterministic=True)


def _log(conn: sqlite3.Connection, event_id: str, kind: Kind, keep: Retention) -> int:
    """Record a change in the caller's write transaction; returns its seq."""
    row = conn.execute(
        "INSERT INTO changes (event_id, kind, at) VALUES (?, ?, ?) RETURNING seq",
        (event_id, kind, time.time()),
    )
    seq: int = row.fetchone()[0]
    if seq % _PRUNE_EVERY == 0:
        _prune(conn, seq, keep)
    return seq


def _log_each(conn: sqlite3.Connection, kind: Kind, select_ids: str, keep: Retention) -> None:
    """One record per event id that ``select_ids`` (a SELECT of ids, in order) finds. For
    the bulk writes (a new database's import, delete all): a follower learns of each event
    they write. Then whatever ``keep`` lets go goes at once, however much: the bulk write
    holds the lock for long anyway, and the log stays within its bound."""
    conn.execute(
        f"INSERT INTO changes (event_id, kind, at) SELECT id, ?, ? FROM ({select_ids})",
        (kind, time.time()),
    )
    _prune(conn, _head(conn), keep, at_most=None)


def _head(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


def _prune(
    conn: sqlite3.Connection, head: int, keep: Retention, at_most: int | None = _PRUNE_AT_MOST
) -> None:
    """Drop the records ``keep`` lets go, the oldest first, ``at_most`` at a time. Times
    rise with seqs (one writer at a time), so the first young record is found by walking up
    from the oldest: past the records that go, and no further."""
    young = conn.execute(
        "SELECT seq FROM changes WHERE at >= ? ORDER BY seq LIMIT 1", (time.time() - keep.seconds,)
    ).fetchone()
    oldest = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0] or 0
    upto = keep.prunable(head, young[0] if young else None)
    if at_most is not None:
        upto = min(upto, oldest + at_most)
    if upto >= oldest:
        conn.execute("DELETE FROM changes WHERE seq <= ?", (upto,))


def _inserter(
    event: EventCreate, keep: Retention
) -> tuple[EventRead, Callable[[sqlite3.Connection], int]]:
    """The event ``event`` becomes, and the write (in the caller's transaction) that stores
    it with its change record; the write returns the record's seq."""
    now = dates.now()
    created = EventRead(id=str(ObjectId()), **event.model_dump(), created_at=now, updated_at=now)
    fields = fields_of(created)
    row = list(values(fields).values())

    def insert(conn: sqlite3.Connection) -> int:
        seq = _log(conn, created.id, "created", keep)
        conn.execute(_insert(seq), row)
        _write_occurrences(conn, fields, fresh=True)
        return seq

    return created, insert


class SqliteEventStore:
    backend: Backend = "sqlite"

    def __init__(
        self, connections: Connections, timeout: float, retention: Retention = DEFAULT_RETENTION
    ) -> None:
        self._db = connections
        self._timeout = timeout
        self._keep = retention
        self._merging = asyncio.get_running_loop().create_task(self._merge_search())

    @classmethod
    async def open(
        cls, path: str, timeout: float, retention: Retention = DEFAULT_RETENTION
    ) -> SqliteEventStore:
        await asyncio.to_thread(prepare, path)
        connections = Connections(path, _setup)
        try:
            await connections.open(_SCHEMA)
            # A read first: opening a database that has the column takes no write lock.
            if not await connections.read(_has_version, time.monotonic() + timeout):
                await connections.write(_add_version, time.monotonic() + timeout)
            if not await connections.read(_derived_ready, time.monotonic() + timeout):
                await connections.write(_build_derived, time.monotonic() + _BUILD_WITHIN)
            found = await connections.read(sqlite_schema.version, time.monotonic() + timeout)
            if found > sqlite_schema.SCHEMA_VERSION:
                raise sqlite_schema.newer(path, found)
            if found < sqlite_schema.SCHEMA_VERSION:
                deadline = time.monotonic() + _BUILD_WITHIN
                if await connections.write(sqlite_schema.upgrade, deadline):
                    log.info(
                        "upgraded the SQLite database %r to schema version %d",
                        path,
                        sqlite_schema.SCHEMA_VERSION,
                    )
        except sqlite3.Error as exc:
            await connections.close()
            raise StoreUnavailable(f"cannot open the SQLite database {path!r}: {exc}") from None
        except StoreUnavailable:
            await connections.close()
            raise
        return cls(connections, timeout, retention)

    async def _read(
        self, what: str, job: Callable[[sqlite3.Connection], T], *, lane: Lane = "point"
    ) -> T:
        async with guarded(self._timeout, (sqlite3.Error, ValueError), f"sqlite {what}"):
            return await self._db.read(job, time.monotonic() + self._timeout, lane=lane)

    async def _write(
        self, what: str, job: Callable[[sqlite3.Connection], T], timeout: float | None = None
    ) -> T:
        limit = timeout or self._timeout
        async with guarded(limit, (sqlite3.Error, ValueError), f"sqlite {what}"):
            return await self._db.write(job, time.monotonic() + limit)

    async def get(self, event_id: str) -> EventRead | None:
        def get(conn: sqlite3.Connection) -> sqlite3.Row | None:
            sql = f"SELECT {SELECTED} FROM events WHERE id = ?"
            row: sqlite3.Row | None = conn.execute(sql, (event_id,)).fetchone()
            return row

        row = await self._read("get", get)
        return to_event(row) if row else None

    async def get_versioned(self, event_id: str) -> Versioned | None:
        row = await self._read("get", lambda conn: _current(conn, event_id))
        return _versioned(row) if row else None

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        sql = f"SELECT {SELECTED}, version FROM events WHERE id IN (SELECT value FROM json_each(?))"

        def get_many(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(sql, (json.dumps(list(event_ids)),)).fetchall()

        rows = await self._read("get", get_many) if event_ids else []
        return {row["id"]: _versioned(row) for row in rows}

    async def head(self) -> int:
        return await self._read("head", _head, lane="system")

    async def list(self, query: EventQuery) -> EventPage:
        after = cursors.decode(query)

        def page(conn: sqlite3.Connection) -> tuple[int, list[sqlite3.Row], bool | None]:
            # One read transaction: the total and the page come from the same snapshot.
            conn.execute("BEGIN")
            windowed = query.windowed()
            span = sql.longest(conn) if windowed else timedelta(0)
            recurring = windowed and sql.recurring(conn)
            total = sql.total(conn, query, span, recurring)
            in_order = sql.searched(query) is not None and sql.read_in_order(
                query, total, sql.kept_count(conn, "*")
            )
            rows, more = sql.page_rows(conn, query, after, span, in_order, recurring)
            conn.execute("COMMIT")
            return total, rows, more

        total, rows, more = await self._read("list", page, lane="list")
        items = [_occurrence(r) for r in rows] if query.expand else [to_event(r) for r in rows]
        last = sql.position(query, rows[-1]) if rows else None
        return EventPage(items=items, total=total, more=more, last=last)

    async def create(self, event: EventCreate) -> Saved:
        created, insert = _inserter(event, self._keep)
        return Saved(created, await self._write("insert", insert))

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        created, insert = _inserter(event, self._keep)
        expired = claim.at - IDEMPOTENCY_TTL

        def once(conn: sqlite3.Connection) -> Saved:
            # One write transaction (BEGIN IMMEDIATE): the look-up, the event, its change
            # record and the key's record commit together or not at all, so two processes
            # cannot both create, and a crash leaves neither half.
            conn.execute("DELETE FROM idempotency WHERE created_at < ?", (expired,))
            found = conn.execute(
                "SELECT fingerprint, response FROM idempotency WHERE scope = ? AND key = ?",
                (claim.scope, claim.key),
            ).fetchone()
            if found is not None:
                if found["fingerprint"] != claim.fingerprint:
                    raise IdempotencyKeyReused()
                return Saved(EventRead.model_validate_json(found["response"]), 0, replayed=True)
            seq = insert(conn)
            conn.execute(
                "INSERT INTO idempotency "
                "(scope, key, fingerprint, event_id, response, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    claim.scope,
                    claim.key,
                    claim.fingerprint,
                    created.id,
                    created.model_dump_json(),
                    claim.at,
                ),
            )
            return Saved(created, seq)

        return await self._write("insert", once)

    async def update(
        self, event_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Saved | None:
        if not changes:
            # Nothing to write; still the same check (a read: nothing to make atomic).
            current = await self.get_versioned(event_id)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(current)
            return Saved(current.event, 0)
        assignments = ", ".join(f"{name} = ?" for name in COLUMNS[1:])
        statement = (
            f"UPDATE events SET {assignments}, version = ? WHERE id = ? RETURNING {SELECTED}"
        )

        def update(conn: sqlite3.Connection) -> tuple[sqlite3.Row, int] | None:
            # BEGIN IMMEDIATE holds the write lock from here to COMMIT: no other connection,
            # in this process or another, can write between the check and the update, so
            # the event checked (merged) is the one written over.
            current = _current(conn, event_id)
            if current is None:
                return None
            _check(current, expected_version)
            before = to_event(current)
            event = merged(before, changes)
            fields: EventFields = {
                **fields_of(before),
                **event.model_dump(),  # type: ignore[typeddict-item]
                "updated_at": dates.after(before.updated_at),
            }
            seq = _log(conn, event_id, "updated", self._keep)
            columns = list(values(fields).values())[1:]
            row: sqlite3.Row = conn.execute(statement, [*columns, seq, event_id]).fetchone()
            _write_occurrences(conn, fields, fresh=before.recurrence is None)
            return row, seq

        done = await self._write("update", update)
        return Saved(to_event(done[0]), done[1]) if done else None

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        def delete(conn: sqlite3.Connection) -> int | None:
            if expected_version is not None:
                _check(_current(conn, event_id), expected_version)
            gone = conn.execute("DELETE FROM events WHERE id = ?", (event_id,)).rowcount
            return _log(conn, event_id, "deleted", self._keep) if gone else None

        return await self._write("delete", delete)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        batch = [fields_of(e) for e in events]
        rows = [tuple(values(e).values()) for e in batch]
        if not rows:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            # The statement's own rows: total_changes would count the search index's too.
            added = conn.executemany(_insert(_UNLOGGED, ignore=True), rows).rowcount
            _add_occurrences(conn, batch)
            if added:
                # A record for each new row (found by id: the batch's rows only, not by
                # scanning the whole table); their version: the newest of those records.
                ids = [(row[0], _UNLOGGED) for row in rows]
                conn.executemany(
                    "INSERT INTO changes (event_id, kind, at) SELECT id, 'created', ? "
                    "FROM events WHERE id = ? AND version = ?",
                    [(time.time(), *pair) for pair in ids],
                )
                seq = _head(conn)
                conn.executemany(
                    "UPDATE events SET version = ? WHERE id = ? AND version = ?",
                    [(seq, *pair) for pair in ids],
                )
                if seq // _PRUNE_EVERY > (seq - added) // _PRUNE_EVERY:
                    _prune(conn, seq, self._keep)
            return added

        return await self._write("insert", insert, max(self._timeout, BULK_TIMEOUT))

    async def load_new(self, batches: Iterable[Sequence[EventFields]]) -> int | None:
        def load(conn: sqlite3.Connection) -> int | None:
            if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None:
                return None
            aside = conn.execute(_SET_ASIDE).fetchall()
            for kind, name, _ in aside:
                conn.execute(f'DROP {kind.upper()} "{name}"')
            # Their version: the seq their first change record, logged below, will take.
            statement = _insert(_head(conn) + 1, ignore=True)
            added = 0
            for batch in batches:
                added += conn.executemany(
                    statement, [tuple(values(e).values()) for e in batch]
                ).rowcount
                _add_occurrences(conn, batch)
            conn.execute("DELETE FROM events_search")
            _search_config(conn, _LOAD_MERGING)
            conn.execute(_SEARCH_EVERY_EVENT)
            conn.execute("INSERT INTO events_search (events_search) VALUES ('optimize')")
            _search_config(conn, _SEARCH_MERGING)
            _count_every_event(conn)
            for _, _, definition in aside:
                conn.execute(definition)
            _log_each(conn, "created", "SELECT id FROM events ORDER BY id", self._keep)
            return added

        # Readers see the empty table (and its indexes) until the commit; writers wait.
        return await self._write("load", load, _BUILD_WITHIN)

    async def delete_all(self) -> int:
        def delete_all(conn: sqlite3.Connection) -> int:
            gone = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            _log_each(conn, "deleted", "SELECT id FROM events ORDER BY id", self._keep)
            # The index first, at once: the delete trigger then finds nothing to remove.
            conn.execute("DELETE FROM events_search")
            conn.execute("DELETE FROM occurrences")
            conn.execute("DELETE FROM events")
            return gone

        return await self._write("delete_all", delete_all, max(self._timeout, BULK_TIMEOUT))

    async def scan(self, after: str | None, limit: int) -> Sequence[EventRead]:
        sql = f"SELECT {SELECTED} FROM events WHERE id > ? ORDER BY id LIMIT ?"

        def scan(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(sql, (after or "", limit)).fetchall()

        return [to_event(row) for row in await self._read("scan", scan)]

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        def since(conn: sqlite3.Connection) -> ChangeBatch:
            conn.execute("BEGIN")
            rows = conn.execute(
                "SELECT seq, event_id, kind FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
            head = _head(conn)
            oldest = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
            conn.execute("COMMIT")
            first_kept = head + 1 if oldest is None else int(oldest)
            changes = [Change(int(r[0]), r[1], r[2]) for r in rows]
            return ChangeBatch(changes, head, gap=first_kept > after + 1)

        return await self._read("changes", since, lane="system")

    async def count(self) -> int:
        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

        return await self._read("count", count)

    async def ping(self) -> None:
        await self._read("ping", lambda conn: conn.execute("SELECT 1").fetchone(), lane="system")

    async def _merge_search(self) -> None:
        """Merge the search index in the background (see _SEARCH_MERGING), a bounded step
        at a time, as long as there is work; a failed step (the database locked, say) is
        tried again later. Each process does this; their steps take turns on the lock."""
        while True:
            try:
                worked = await self._db.write(_merge_step, time.monotonic() + self._timeout)
            except sqlite3.Error as exc:
                log.debug("search index merge step failed: %s", exc)
                worked = False
            await asyncio.sleep(_MERGE_PAUSE if worked else _MERGE_IDLE)

    async def close(self) -> None:
        self._merging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._merging
        await self._db.close()
