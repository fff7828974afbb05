"""SQLite event store (aiosqlite, WAL): the zero-setup embedded default."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
from bson import ObjectId

from eventapi.errors import StoreUnavailable
from eventapi.events import dates
from eventapi.events.schemas import EVENT_FIELDS, EventCreate, EventPage, EventQuery, EventRead
from eventapi.storage.base import Backend, guarded

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
    organizer    TEXT
);
CREATE INDEX IF NOT EXISTS events_by_date ON events (date_utc, id);
CREATE INDEX IF NOT EXISTS events_by_title ON events (title, id);
CREATE INDEX IF NOT EXISTS events_by_category ON events (category_key, date_utc, id);
"""

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


class SqliteEventStore:
    backend: Backend = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, timeout: float) -> None:
        self._conn = conn
        self._timeout = timeout
        # One connection is shared by all requests: a multi-statement write transaction
        # must not have another request's write interleaved into it.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, timeout: float) -> SqliteEventStore:
        await asyncio.to_thread(prepare, path)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        await conn.create_function("icontains", 2, _icontains, deterministic=True)
        await conn.executescript(_SCHEMA)
        return cls(conn, timeout)

    def _guard(self, what: str) -> Any:
        return guarded(self._timeout, (sqlite3.Error, ValueError), f"sqlite {what}")

    async def _one(self, sql: str, params: Sequence[Any]) -> sqlite3.Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def get(self, event_id: str) -> EventRead | None:
        async with self._guard("get"):
            row = await self._one(f"SELECT {_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return _row_to_event(row) if row else None

    async def list(self, query: EventQuery) -> EventPage:
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
            where.append(
                "(icontains(title, ?) OR icontains(description, ?) OR icontains(location, ?))"
            )
            params.extend([query.q] * 3)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        async with self._guard("list"):
            total_row = await self._one(f"SELECT COUNT(*) FROM events {clause}", params)
            sql = (
                f"SELECT {_COLUMNS} FROM events {clause} "
                f"ORDER BY {_ORDER[query.sort]} LIMIT ? OFFSET ?"
            )
            async with self._conn.execute(sql, [*params, query.limit, query.offset]) as cursor:
                rows = await cursor.fetchall()
        total = int(total_row[0]) if total_row else 0
        return EventPage(items=[_row_to_event(r) for r in rows], total=total)

    async def create(self, event: EventCreate) -> EventRead:
        created = EventRead(id=str(ObjectId()), **event.model_dump())
        await self.insert_missing([created])
        return created

    async def update(self, event_id: str, changes: Mapping[str, Any]) -> EventRead | None:
        columns = _columns(changes)
        if not columns:
            return await self.get(event_id)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        async with self._guard("update"), self._write_lock:
            row = await self._one(
                f"UPDATE events SET {assignments} WHERE id = ? RETURNING {_COLUMNS}",
                [*columns.values(), event_id],
            )
        return _row_to_event(row) if row else None

    async def delete(self, event_id: str) -> bool:
        sql = "DELETE FROM events WHERE id = ?"
        async with (
            self._guard("delete"),
            self._write_lock,
            self._conn.execute(sql, (event_id,)) as c,
        ):
            return c.rowcount > 0

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        rows = [{"id": e.id, **_columns(e.model_dump(include=set(EVENT_FIELDS)))} for e in events]
        if not rows:
            return 0
        names = list(rows[0])
        sql = (
            f"INSERT OR IGNORE INTO events ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        async with self._guard("insert"), self._write_lock:
            before = self._conn.total_changes
            await self._conn.execute("BEGIN")
            try:
                await self._conn.executemany(sql, [[r[n] for n in names] for r in rows])
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            return self._conn.total_changes - before

    async def delete_all(self) -> int:
        sql = "DELETE FROM events"
        async with self._guard("delete_all"), self._write_lock, self._conn.execute(sql) as c:
            return c.rowcount

    async def count(self) -> int:
        async with self._guard("count"):
            row = await self._one("SELECT COUNT(*) FROM events", ())
        return int(row[0]) if row else 0

    async def ping(self) -> None:
        async with self._guard("ping"):
            await self._one("SELECT 1", ())

    async def close(self) -> None:
        await self._conn.close()
