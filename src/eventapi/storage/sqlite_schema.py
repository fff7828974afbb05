"""The SQLite store's schema version, and the upgrade from each version to the next.

The version is SQLite's ``PRAGMA user_version``: 0 or 1 is the layout of the releases before
versions were recorded (sqlite.py's base schema), SCHEMA_VERSION this release's. A database
of a newer version is refused with one line, never read: its rows may mean what this
release cannot know. An upgrade runs in one write transaction that reads the version again
first, so of several processes opening an old database at once one upgrades it and the
others, waiting for the write lock, find it done: exactly once. Every upgrade only adds
(columns with defaults, tables, indexes, triggers), so a process of the previous release
still reads and writes the upgraded database during a rolling upgrade; what it cannot keep
(the new fields' derived columns) is listed in the README's upgrade section.
"""

from __future__ import annotations

import sqlite3

from eventapi.errors import StoreUnavailable

SCHEMA_VERSION = 3

# Version 2: calendar fields (events/timing.py says what the timeline columns hold).
_CALENDAR = """
ALTER TABLE events ADD COLUMN date_wall TEXT;   -- as sent, for a wall-clock date in a zone
ALTER TABLE events ADD COLUMN end_utc TEXT;
ALTER TABLE events ADD COLUMN end_naive INTEGER;
ALTER TABLE events ADD COLUMN end_wall TEXT;
ALTER TABLE events ADD COLUMN timezone TEXT;
ALTER TABLE events ADD COLUMN status TEXT NOT NULL DEFAULT 'scheduled';
ALTER TABLE events ADD COLUMN recurrence TEXT;
ALTER TABLE events ADD COLUMN exdates TEXT;     -- JSON array, the values as the API writes them
ALTER TABLE events ADD COLUMN created_at TEXT;  -- UTC; NULL: made before they were kept
ALTER TABLE events ADD COLUMN updated_at TEXT;
-- Where the event's last occurrence ends, when later than date_utc (NULL: a point in time).
ALTER TABLE events ADD COLUMN until_utc TEXT;
-- The casefolded organizer, for the organizer filter: set by this release's writes, and by
-- the triggers below for a write of the previous release (which registers the function).
ALTER TABLE events ADD COLUMN organizer_key TEXT;
UPDATE events SET organizer_key = eventapi_casefold(organizer) WHERE organizer IS NOT NULL;
CREATE TRIGGER events_organizer_insert AFTER INSERT ON events
WHEN new.organizer IS NOT NULL AND new.organizer_key IS NULL BEGIN
    UPDATE events SET organizer_key = eventapi_casefold(new.organizer) WHERE rowid = new.rowid;
END;
CREATE TRIGGER events_organizer_update AFTER UPDATE OF organizer ON events
WHEN new.organizer IS NOT old.organizer AND new.organizer_key IS old.organizer_key BEGIN
    UPDATE events SET organizer_key = eventapi_casefold(new.organizer) WHERE rowid = new.rowid;
END;
CREATE INDEX events_by_organizer ON events (organizer_key, date_utc, id);
CREATE INDEX events_by_status ON events (status, date_utc, id);
CREATE INDEX events_by_updated ON events (updated_at, id);
-- The occurrences of recurring events (events/recurrence.py bounds how many).
CREATE TABLE occurrences (
    event_id  TEXT NOT NULL,
    start_utc TEXT NOT NULL,
    stop_utc  TEXT NOT NULL,
    PRIMARY KEY (event_id, start_utc)
) WITHOUT ROWID;
CREATE INDEX occurrences_by_start ON occurrences (start_utc, event_id);
CREATE TRIGGER occurrences_of_deleted AFTER DELETE ON events
WHEN old.recurrence IS NOT NULL BEGIN
    DELETE FROM occurrences WHERE event_id = old.id;
END;
-- The longest span (until_utc - date_utc, in ms, rounded up) any event has had: a window
-- query reads events from date_from minus it, through the date index. Only grows.
CREATE TABLE event_longest (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ms INTEGER NOT NULL
);
CREATE TRIGGER event_longest_insert AFTER INSERT ON events
WHEN new.until_utc IS NOT NULL BEGIN
    INSERT INTO event_longest VALUES (1,
        CAST((julianday(new.until_utc) - julianday(new.date_utc)) * 86400000 AS INTEGER) + 1000)
    ON CONFLICT (id) DO UPDATE SET ms = max(ms, excluded.ms);
END;
CREATE TRIGGER event_longest_update AFTER UPDATE OF until_utc, date_utc ON events
WHEN new.until_utc IS NOT NULL BEGIN
    INSERT INTO event_longest VALUES (1,
        CAST((julianday(new.until_utc) - julianday(new.date_utc)) * 86400000 AS INTEGER) + 1000)
    ON CONFLICT (id) DO UPDATE SET ms = max(ms, excluded.ms);
END;
-- A write by a process of the previous release (it does not know updated_at) still moves
-- updated_at: every write of either release gives the event a new version, and a write of
-- this release always moves updated_at on (dates.after), so this never fires for one. Not
-- the version fix-up of an import (from -1), which is no change of the event.
CREATE TRIGGER events_touch AFTER UPDATE OF version ON events
WHEN new.updated_at IS old.updated_at AND old.version >= 0 BEGIN
    UPDATE events SET updated_at = strftime('%Y-%m-%dT%H:%M:%f', 'now') WHERE rowid = new.rowid;
END;
"""

# Version 3: what a follower of the change log is told (eventapi/changes.py): how each record
# changed its event, and when it was written (for Retention).
_FEED = """
ALTER TABLE changes ADD COLUMN kind TEXT;  -- created, updated, deleted; NULL: not recorded
ALTER TABLE changes ADD COLUMN at REAL;    -- time.time() of the write
-- A record written by the previous release (it knows neither column) is timed on insert.
CREATE TRIGGER changes_at AFTER INSERT ON changes WHEN new.at IS NULL BEGIN
    UPDATE changes SET at = (julianday('now') - 2440587.5) * 86400.0 WHERE seq = new.seq;
END;
"""

_UPGRADES = {2: _CALENDAR, 3: _FEED}


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def version(conn: sqlite3.Connection) -> int:
    """The database's schema version, as a read sees it (before any upgrade is decided)."""
    return _version(conn)


def newer(path: str, found: int) -> StoreUnavailable:
    """The refusal of a database a newer release wrote."""
    return StoreUnavailable(
        f"the SQLite database {path!r} has schema version {found}, written by a newer "
        f"eventapi; this release reads version {SCHEMA_VERSION} at most: upgrade eventapi"
    )


def upgrade(conn: sqlite3.Connection) -> list[int]:
    """In a write transaction: bring the database to SCHEMA_VERSION; the versions applied
    (none when another process already did)."""
    applied = []
    # Read again in the write transaction: another process may have upgraded it since.
    for target in range(max(_version(conn), 1) + 1, SCHEMA_VERSION + 1):
        for statement in _statements(_UPGRADES[target]):
            conn.execute(statement)
        applied.append(target)
    if applied:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return applied


def _statements(script: str) -> list[str]:
    """The statements of ``script`` (executescript would COMMIT the caller's transaction)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements
