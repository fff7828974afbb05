"""SQLite event store (WAL; see sqlite_pool.py for how connections are used): the
zero-setup embedded default. Every write and its change-log record commit together."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from bson import ObjectId

from eventapi.changes import Change, ChangeBatch
from eventapi.errors import IdempotencyKeyReused, StoreUnavailable
from eventapi.events import dates
from eventapi.events.schemas import EVENT_FIELDS, EventCreate, EventPage, EventQuery, EventRead
from eventapi.events.store import (
    IDEMPOTENCY_TTL,
    Backend,
    Claim,
    Saved,
    VersionConflict,
    Versioned,
)
from eventapi.storage.guarded import guarded
from eventapi.storage.sqlite_pool import Connections

T = TypeVar("T")

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
"""

# The log keeps at least this many records; a relay further behind retires everything.
KEEP_CHANGES = 10_000
_PRUNE_EVERY = 1_000
# The version column came after the first databases were made: they get it at open.
_ADD_VERSION = "ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 0"
# The version of rows insert_missing has just inserted, until its change record has a seq.
_UNLOGGED = -1

_COLUMNS = "id, title, description, date_utc, date_naive, location, category, organizer"
_ORDER = {
    "date": "date_utc ASC, id ASC",
    "-date": "date_utc DESC, id DESC",
    "title": "title ASC, id ASC",
    "-title": "title DESC, id DESC",
}


def _icontains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.casefold() in haystack.casefold()


def _utc_text(value: datetime) -> str:
    return dates.instant(value).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Domain fields -> column values (date and category expand into two columns each)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "date":
            out["date_utc"] = _utc_text(value)
            out["date_naive"] = int(value.tzinfo is None)
        elif name == "category":
            out["category"] = value
            out["category_key"] = value.casefold() if value is not None else None
        else:
            out[name] = value
    return out


def _row_to_event(row: sqlite3.Row) -> EventRead:
    moment = datetime.fromisoformat(row["date_utc"])
    return EventRead(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        date=dates.from_instant(moment, bool(row["date_naive"])),
        location=row["location"],
        category=row["category"],
        organizer=row["organizer"],
    )


def prepare(path: str) -> None:
    """Create the file's folder and check SQLite can open it; else one clear error line."""
    try:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA schema_version")
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreUnavailable(f"cannot open the SQLite database {path!r}: {reason}") from None


def _has_version(conn: sqlite3.Connection) -> bool:
    return any(row["name"] == "version" for row in conn.execute("PRAGMA table_info(events)"))


def _add_version(conn: sqlite3.Connection) -> None:
    """Add the version column to a database made before it existed (rows get version 0).
    Runs in a write transaction and looks again there, so of two processes opening one old
    database at once, the second waits for the first and then finds the column."""
    if not _has_version(conn):
        conn.execute(_ADD_VERSION)


def _versioned(row: sqlite3.Row) -> Versioned:
    return Versioned(_row_to_event(row), int(row["version"]))


def _current(conn: sqlite3.Connection, event_id: str) -> sqlite3.Row | None:
    sql = f"SELECT {_COLUMNS}, version FROM events WHERE id = ?"
    row: sqlite3.Row | None = conn.execute(sql, (event_id,)).fetchone()
    return row


def _check(row: sqlite3.Row | None, expected_version: int | None) -> None:
    """In the write transaction, before the write: VersionConflict if the event is not at
    the expected version (None: any version will do)."""
    if row is not None and expected_version is not None and row["version"] != expected_version:
        raise VersionConflict(_versioned(row))


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.create_function("icontains", 2, _icontains, deterministic=True)


def _log(conn: sqlite3.Connection, event_id: str | None) -> int:
    """Record a change in the caller's write transaction; returns its seq."""
    row = conn.execute("INSERT INTO changes (event_id) VALUES (?) RETURNING seq", (event_id,))
    seq: int = row.fetchone()[0]
    if seq % _PRUNE_EVERY == 0:
        conn.execute("DELETE FROM changes WHERE seq <= ?", (seq - KEEP_CHANGES,))
    return seq


def _where(query: EventQuery) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.category is not None:
        where.append("category_key = ?")
        params.append(query.category.casefold())
    if query.date_from is not None:
        where.append("date_utc >= ?")
        params.append(_utc_text(query.date_from))
    if query.date_to is not None:
        where.append("date_utc <= ?")
        params.append(_utc_text(query.date_to))
    if query.q is not None:
        where.append("(icontains(title, ?) OR icontains(description, ?) OR icontains(location, ?))")
        params.extend([query.q] * 3)
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


def _inserter(event: EventCreate) -> tuple[EventRead, Callable[[sqlite3.Connection], int]]:
    """The event ``event`` becomes, and the write (in the caller's transaction) that stores
    it with its change record; the write returns the record's seq."""
    created = EventRead(id=str(ObjectId()), **event.model_dump())
    row = {"id": created.id, **_columns(event.model_dump())}
    sql = f"INSERT INTO events ({', '.join(row)}, version) VALUES ({', '.join('?' * len(row))}, ?)"

    def insert(conn: sqlite3.Connection) -> int:
        seq = _log(conn, created.id)
        conn.execute(sql, [*row.values(), seq])
        return seq

    return created, insert


class SqliteEventStore:
    backend: Backend = "sqlite"

    def __init__(self, connections: Connections, timeout: float) -> None:
        self._db = connections
        self._timeout = timeout

    @classmethod
    async def open(cls, path: str, timeout: float) -> SqliteEventStore:
        await asyncio.to_thread(prepare, path)
        connections = Connections(path, _setup)
        try:
            await connections.open(_SCHEMA)
            # A read first: opening a database that has the column takes no write lock.
            if not await connections.read(_has_version, time.monotonic() + timeout):
                await connections.write(_add_version, time.monotonic() + timeout)
        except sqlite3.Error as exc:
            await connections.close()
            raise StoreUnavailable(f"cannot open the SQLite database {path!r}: {exc}") from None
        return cls(connections, timeout)

    async def _read(self, what: str, job: Callable[[sqlite3.Connection], T]) -> T:
        async with guarded(self._timeout, (sqlite3.Error, ValueError), f"sqlite {what}"):
            return await self._db.read(job, time.monotonic() + self._timeout)

    async def _write(self, what: str, job: Callable[[sqlite3.Connection], T]) -> T:
        async with guarded(self._timeout, (sqlite3.Error, ValueError), f"sqlite {what}"):
            return await self._db.write(job, time.monotonic() + self._timeout)

    async def get(self, event_id: str) -> EventRead | None:
        def get(conn: sqlite3.Connection) -> sqlite3.Row | None:
            sql = f"SELECT {_COLUMNS} FROM events WHERE id = ?"
            row: sqlite3.Row | None = conn.execute(sql, (event_id,)).fetchone()
            return row

        row = await self._read("get", get)
        return _row_to_event(row) if row else None

    async def get_versioned(self, event_id: str) -> Versioned | None:
        row = await self._read("get", lambda conn: _current(conn, event_id))
        return _versioned(row) if row else None

    async def list(self, query: EventQuery) -> EventPage:
        clause, params = _where(query)
        page_sql = (
            f"SELECT {_COLUMNS} FROM events {clause} ORDER BY {_ORDER[query.sort]} LIMIT ? OFFSET ?"
        )

        def page(conn: sqlite3.Connection) -> tuple[int, list[sqlite3.Row]]:
            # One read transaction: the total and the page come from the same snapshot.
            conn.execute("BEGIN")
            total = conn.execute(f"SELECT COUNT(*) FROM events {clause}", params).fetchone()[0]
            rows = conn.execute(page_sql, [*params, query.limit, query.offset]).fetchall()
            conn.execute("COMMIT")
            return int(total), rows

        total, rows = await self._read("list", page)
        return EventPage(items=[_row_to_event(r) for r in rows], total=total)

    async def create(self, event: EventCreate) -> Saved:
        created, insert = _inserter(event)
        return Saved(created, await self._write("insert", insert))

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        created, insert = _inserter(event)
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
        columns = _columns(changes)
        if not columns:
            # Nothing to write; still the same check (a read: nothing to make atomic).
            current = await self.get_versioned(event_id)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(current)
            return Saved(current.event, 0)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        sql = f"UPDATE events SET {assignments}, version = ? WHERE id = ? RETURNING {_COLUMNS}"

        def update(conn: sqlite3.Connection) -> tuple[sqlite3.Row, int] | None:
            # BEGIN IMMEDIATE holds the write lock from here to COMMIT: no other connection,
            # in this process or another, can write between the check and the update.
            current = _current(conn, event_id)
            if current is None:
                return None
            _check(current, expected_version)
            seq = _log(conn, event_id)
            row: sqlite3.Row = conn.execute(sql, [*columns.values(), seq, event_id]).fetchone()
            return row, seq

        done = await self._write("update", update)
        return Saved(_row_to_event(done[0]), done[1]) if done else None

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        def delete(conn: sqlite3.Connection) -> int | None:
            if expected_version is not None:
                _check(_current(conn, event_id), expected_version)
            gone = conn.execute("DELETE FROM events WHERE id = ?", (event_id,)).rowcount
            return _log(conn, event_id) if gone else None

        return await self._write("delete", delete)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        rows = [{"id": e.id, **_columns(e.model_dump(include=set(EVENT_FIELDS)))} for e in events]
        if not rows:
            return 0
        names = list(rows[0])
        sql = (
            f"INSERT OR IGNORE INTO events ({', '.join(names)}, version) "
            f"VALUES ({', '.join('?' * len(names))}, {_UNLOGGED})"
        )

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(sql, [[r[n] for n in names] for r in rows])
            added = conn.total_changes - before
            if added:
                # The new rows' version: the seq of the one record logged for all of them.
                # Found by id (the batch's rows only), not by scanning the whole table.
                seq = _log(conn, None)
                conn.executemany(
                    "UPDATE events SET version = ? WHERE id = ? AND version = ?",
                    [(seq, r["id"], _UNLOGGED) for r in rows],
                )
            return added

        return await self._write("insert", insert)

    async def delete_all(self) -> int:
        def delete_all(conn: sqlite3.Connection) -> int:
            gone = conn.execute("DELETE FROM events").rowcount
            if gone:
                _log(conn, None)
            return gone

        return await self._write("delete_all", delete_all)

    async def scan(self, after: str | None, limit: int) -> Sequence[EventRead]:
        sql = f"SELECT {_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?"

        def scan(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(sql, (after or "", limit)).fetchall()

        return [_row_to_event(row) for row in await self._read("scan", scan)]

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        def since(conn: sqlite3.Connection) -> ChangeBatch:
            conn.execute("BEGIN")
            rows = conn.execute(
                "SELECT seq, event_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
            head = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
            oldest = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
            conn.execute("COMMIT")
            head_seq = int(head[0]) if head else 0
            first_kept = head_seq + 1 if oldest is None else int(oldest)
            changes = [Change(int(r[0]), r[1]) for r in rows]
            return ChangeBatch(changes, head_seq, gap=first_kept > after + 1)

        return await self._read("changes", since)

    async def count(self) -> int:
        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

        return await self._read("count", count)

    async def ping(self) -> None:
        await self._read("ping", lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self._db.close()
