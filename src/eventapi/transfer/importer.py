"""`eventapi import FILE`: all of a file's events, or none.

1. The input is copied to a private temporary file first, so that what is checked is what
   is read, whatever happens to the original (or to a pipe) meanwhile.
2. Every row is checked (rows.py) and the valid ones are staged, checked, in a temporary
   SQLite file (``Staging``). Any invalid row (or an id given to two different events):
   each is reported with its line and field, and nothing is imported.
3. The staged events are written in id order, the first row of each id (a repeat of the
   same event counts once). Into a store that holds no events, all of them in one
   transaction (``BulkEventStore.load_new``: an interrupted or failed import leaves the
   database as it was, and the indexes are built once, from the whole table). Otherwise in
   batches through ``EventStore.insert_missing``, each a transaction (SQLite) or an
   ``insert_many`` (MongoDB) with its record in the change log, so that running servers
   keep writing in between; an id the database already holds is left as it is, so an
   import run twice (or again after it was interrupted) adds only what is missing.
   Running servers apply the change records to their caches within a relay interval.

Bounded by a batch, not by the file: memory holds a CHUNK of rows while checking and a
BATCH of events while writing; the file's events wait on disk, where SQLite sorts them by
id (an external sort), so a store's id index is filled in order rather than page by
scattered page (at 1M rows in random order, 1,000-row batches in file order wrote 78 times
the database's size).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO, TextIO, TypeVar, cast

import orjson

from eventapi.events.schemas import EventFields, EventRead
from eventapi.events.store import BulkEventStore
from eventapi.transfer.formats import FileError, Format, Row, element_lines, read_rows
from eventapi.transfer.progress import Progress
from eventapi.transfer.rows import Checked, Problems, check

# Events per write (a batch, or a step of a load): about 1.5 KB an event, 15 MB a batch.
BATCH = 10_000
# Rows read, checked and staged at a time.
CHUNK = 5_000
SHOWN = 20  # problems reported one by one; the rest are counted

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Invalid:
    row: Row
    field: str  # "" when the row as a whole is wrong
    message: str

    def describe(self, name: str) -> str:
        """``events.csv:7: date: ...``; in a JSON array ``events.json:7: [2].date: ...``."""
        path = self.field
        if self.row.element is not None:
            path = f"[{self.row.element}]" + (f".{path}" if path else "")
        return f"{name}:{self.row.line}: " + (f"{path}: " if path else "") + self.message


class InvalidRows(Exception):
    """The file has rows that cannot be imported: the first problems, and how many rows."""

    def __init__(self, shown: list[Invalid], more: bool, count: int, rows: int) -> None:
        super().__init__(f"{count} of {rows} rows are invalid")
        self.shown = shown
        self.more = more  # problems beyond the SHOWN first
        self.count = count
        self.rows = rows


@dataclass(frozen=True, slots=True)
class Imported:
    added: int
    present: int  # ids the database already held: left as they were
    repeated: int  # rows repeating an earlier row of the file


# Rows of the staging file: each valid row, checked (``event``: the event's fields as
# orjson writes them, read back without checking them again).
_STAGING = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE staged (
    idx         INTEGER PRIMARY KEY,  -- the row's index among the file's rows
    id          TEXT NOT NULL,
    fingerprint BLOB NOT NULL,        -- of the fields other than id (rows.py)
    line        INTEGER,              -- NULL in a JSON array: its rows are known by index
    event       BLOB NOT NULL
);
"""
# Rows repeating an id, each with the first row of that id, in file order.
_REPEATS = """
SELECT r.idx, r.line, r.id, r.fingerprint = f.fingerprint, f.idx, f.line
FROM (SELECT id, min(idx) AS first FROM staged GROUP BY id HAVING count(*) > 1) AS d
JOIN staged AS r ON r.id = d.id AND r.idx > d.first
JOIN staged AS f ON f.idx = d.first
ORDER BY r.idx
"""
# The first row of each id, in id order (SQLite: a bare column beside min() comes from the
# row holding the minimum).
_FIRSTS = "SELECT event, min(idx) FROM staged GROUP BY id ORDER BY id"


class Staging:
    """The file's valid rows, checked, in a temporary SQLite file: memory holds a chunk of
    them, whatever the size of the file."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="eventapi-import-")
        self._path = os.path.join(self._dir.name, "staged.db")
        self._db = sqlite3.connect(self._path, isolation_level=None)
        self._db.executescript(_STAGING)
        self.rows = 0

    def add(self, rows: Sequence[tuple[int, Row, Checked]]) -> None:
        values = [
            (
                index,
                c.event_id,
                c.fingerprint,
                row.line,
                orjson.dumps({"id": c.event_id, **c.fields}),
            )
            for index, row, c in rows
        ]
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO staged VALUES (?, ?, ?, ?, ?)", values)
        self._db.execute("COMMIT")
        self.rows += len(values)

    def repeats(self) -> Iterator[tuple[int, int | None, str, bool, int, int | None]]:
        """(index, line, id, same event?, index and line of the id's first row) of every
        row whose id an earlier row has, in file order. Sorts the rows by id first."""
        self._db.execute("CREATE INDEX IF NOT EXISTS staged_by_id ON staged (id, idx)")
        yield from self._db.execute(_REPEATS)

    def events(self, size: int) -> Iterator[list[EventFields]]:
        """The first row's event of each id, in id order, ``size`` at a time. On a
        connection of its own, made where it is iterated (another thread may)."""
        # Not bound to the thread: the iterator may be dropped (and so closed) on another.
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        with closing(db):
            rows = db.execute(_FIRSTS)
            while part := rows.fetchmany(size):
                yield [_staged_event(event) for event, _ in part]

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


def _staged_event(staged: bytes) -> EventFields:
    """A staged event as it was checked (orjson wrote its date to the microsecond)."""
    fields = orjson.loads(staged)
    for name in ("date", "end", "created_at", "updated_at"):
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    if fields["exdates"] is not None:
        fields["exdates"] = [datetime.fromisoformat(value) for value in fields["exdates"]]
    return cast(EventFields, fields)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while part := list(itertools.islice(it, size)):
        yield part


@dataclass
class Plan:
    """What the checking pass found (close() it: its Staging is a temporary file)."""

    staging: Staging = field(default_factory=Staging)
    rows: int = 0
    unique: int = 0  # ids: the events to write
    repeated: int = 0
    invalid: int = 0
    problems: int = 0
    # The first problems in file order: (row index, problem), at most SHOWN of each kind.
    _rejected: list[tuple[int, Invalid]] = field(default_factory=list)
    _conflicts: list[tuple[int, Invalid]] = field(default_factory=list)

    def reject(self, index: int, row: Row, problems: Problems) -> None:
        self.invalid += 1
        self.problems += len(problems)
        room = SHOWN - len(self._rejected)
        self._rejected += [(index, Invalid(row, name, msg)) for name, msg in problems[:room]]

    def conflict(self, index: int, row: Row, message: str) -> None:
        self.invalid += 1
        self.problems += 1
        if len(self._conflicts) < SHOWN:
            self._conflicts.append((index, Invalid(row, "id", message)))

    def shown(self) -> list[Invalid]:
        """The first SHOWN problems, in file order."""
        merged = heapq.merge(self._rejected, self._conflicts, key=lambda entry: entry[0])
        return [invalid for _, invalid in itertools.islice(merged, SHOWN)]

    def close(self) -> None:
        self.staging.close()


@contextmanager
def private_copy(path: str) -> Iterator[IO[bytes]]:
    """A private copy of the file at ``path`` (``-``: standard input), deleted after use."""
    with tempfile.TemporaryFile() as copy:
        try:
            if path == "-":
                shutil.copyfileobj(sys.stdin.buffer, copy)
            else:
                with open(path, "rb") as source:
                    shutil.copyfileobj(source, copy)
        except OSError as exc:
            raise FileError(exc.strerror or str(exc)) from None
        yield copy


def _outcomes(copy: IO[bytes], fmt: Format) -> Iterator[tuple[int, Row, Checked | Problems]]:
    for index, row in enumerate(read_rows(copy, fmt)):
        yield index, row, check(row.data) if row.problem is None else [("", row.problem)]


def plan(copy: IO[bytes], fmt: Format, out: TextIO) -> Plan:
    """The checking pass. Raises InvalidRows or FileError: then nothing may be written."""
    found = Plan()
    try:
        progress = Progress("checking", None, out, unit="rows")
        for chunk in _chunks(_outcomes(copy, fmt), CHUNK):
            progress.update(chunk[0][0])
            valid = []
            for index, row, outcome in chunk:
                if isinstance(outcome, Checked):
                    valid.append((index, row, outcome))
                else:
                    found.reject(index, row, outcome)
            found.staging.add(valid)
            found.rows = chunk[-1][0] + 1
        progress.update(found.rows)
        progress.finish()
        _find_repeats(found)
        if found.invalid:
            shown = found.shown()
            if fmt == "json":
                _locate(copy, shown)
            more = found.problems > len(shown)
            raise InvalidRows(shown, more, found.invalid, found.rows)
    except BaseException:
        found.close()
        raise
    return found


def _find_repeats(found: Plan) -> None:
    """Rows repeating an id must repeat its event: then they count once."""
    later = 0
    for index, line, event_id, same, first, first_line in found.staging.repeats():
        later += 1
        if same:
            found.repeated += 1
            continue
        where = f"[{first}]" if first_line is None else f"line {first_line}"
        problem = f"{event_id} is also the id of {where}, with other fields"
        found.conflict(index, Row(line, index if line is None else None, {}), problem)
    found.unique = found.staging.rows - later


def _locate(copy: IO[bytes], shown: list[Invalid]) -> None:
    """Give the reported elements of a JSON array the lines they start on."""
    elements = [invalid.row.element or 0 for invalid in shown]
    lines = element_lines(copy, max(elements) + 1)
    for n, element in enumerate(elements):
        shown[n] = replace(shown[n], row=Row(lines[element], element, {}))


async def write(store: BulkEventStore, found: Plan, out: TextIO) -> Imported:
    """The writing pass: all at once into an empty store, else batch after batch."""
    progress = Progress("importing", found.unique, out)
    progress.update(0)
    loaded = await store.load_new(_counted(found.staging.events(BATCH), progress))
    if loaded is not None:
        added = loaded
    else:
        added = done = 0
        writing: asyncio.Task[int] | None = None
        for fields in found.staging.events(BATCH):
            batch = [EventRead.model_validate(event) for event in fields]
            if writing is not None:
                added += await writing
                progress.update(done)
            done += len(batch)
            # The store writes this batch (SQLite: in its writer thread) while the next one
            # is read here, so an import takes about as long as the slower of the two.
            writing = asyncio.create_task(store.insert_missing(batch))
            await asyncio.sleep(0)  # let it start
        if writing is not None:
            added += await writing
    progress.update(found.unique)
    progress.finish()
    return Imported(added, found.unique - added, found.repeated)


def _counted(
    batches: Iterator[list[EventFields]], progress: Progress
) -> Iterator[list[EventFields]]:
    done = 0
    for batch in batches:
        yield batch
        done += len(batch)
        progress.update(done)
