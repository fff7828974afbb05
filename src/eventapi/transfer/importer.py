"""`eventapi import FILE`: all of a file's events, or none.

1. The input is copied to a private temporary file first, so both passes below read the
   same bytes whatever happens to the original (or to a pipe) meanwhile.
2. Every row is checked (rows.py) before anything is written. Any invalid row: each is
   reported with its line and field, and nothing is imported.
3. The events are written in batches through ``EventStore.insert_missing``: one
   transaction per batch on SQLite, one ``insert_many`` on MongoDB, each with its record in
   the change log, which running servers apply to their caches within a relay interval.
   An id the database already holds is left as it is, so an import run twice (or again
   after it was interrupted) adds only what is missing.

Rows repeating an id must repeat the event too (then they count once); an id given to two
different events in one file is an invalid row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TextIO

from eventapi.events.schemas import EventRead
from eventapi.events.store import EventStore
from eventapi.transfer.formats import FileError, Format, Row, element_lines, read_rows
from eventapi.transfer.progress import Progress
from eventapi.transfer.rows import Checked, Problems, check

BATCH = 1000
SHOWN = 20  # problems reported one by one; the rest are counted


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


@dataclass(frozen=True, slots=True)
class _First:
    """The row that imports an id: its index among the rows, what it says, its line (None
    in a JSON array, whose rows are known by their index)."""

    index: int
    fingerprint: bytes
    line: int | None


@dataclass
class Plan:
    """What the checking pass found."""

    first: dict[str, _First] = field(default_factory=dict)
    rows: int = 0
    repeated: int = 0
    invalid: int = 0
    shown: list[Invalid] = field(default_factory=list)
    more: bool = False

    def reject(self, row: Row, problems: Problems) -> None:
        self.invalid += 1
        room = SHOWN - len(self.shown)
        self.more = self.more or len(problems) > room
        self.shown += [Invalid(row, name, message) for name, message in problems[:room]]


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
    progress = Progress("checking", None, out, unit="rows")
    for index, row, outcome in _outcomes(copy, fmt):
        found.rows = index + 1
        if index % BATCH == 0:
            progress.update(index)
        if not isinstance(outcome, Checked):
            found.reject(row, outcome)
            continue
        event_id = outcome.event.id
        first = found.first.setdefault(event_id, _First(index, outcome.fingerprint, row.line))
        if first.index == index:
            continue
        if first.fingerprint == outcome.fingerprint:
            found.repeated += 1
        else:
            where = f"[{first.index}]" if first.line is None else f"line {first.line}"
            found.reject(row, [("id", f"{event_id} is also the id of {where}, with other fields")])
    progress.update(found.rows)
    progress.finish()
    if found.invalid:
        if fmt == "json":
            _locate(copy, found.shown)
        raise InvalidRows(found.shown, found.more, found.invalid, found.rows)
    return found


def _locate(copy: IO[bytes], shown: list[Invalid]) -> None:
    """Give the reported elements of a JSON array the lines they start on."""
    elements = [invalid.row.element or 0 for invalid in shown]
    lines = element_lines(copy, max(elements) + 1)
    for n, element in enumerate(elements):
        shown[n] = dataclasses.replace(shown[n], row=Row(lines[element], element, {}))


def _batches(copy: IO[bytes], fmt: Format, found: Plan) -> Iterator[list[EventRead]]:
    """The first row of each id, read and checked again from the copy, BATCH at a time."""
    batch: list[EventRead] = []
    for index, _, outcome in _outcomes(copy, fmt):
        assert isinstance(outcome, Checked), "the private copy was checked and cannot change"
        if found.first[outcome.event.id].index != index:
            continue  # a repeated row
        batch.append(outcome.event)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def write(
    store: EventStore, copy: IO[bytes], fmt: Format, found: Plan, out: TextIO
) -> Imported:
    """The writing pass. Batches go one after the other, each atomic with its change record."""
    unique = len(found.first)
    progress = Progress("importing", unique, out)
    progress.update(0)
    added = done = 0
    writing: asyncio.Task[int] | None = None
    for batch in _batches(copy, fmt, found):
        if writing is not None:
            added += await writing
            done += BATCH
            progress.update(done)
        # The store writes this batch (SQLite: in its writer thread) while the next one is
        # read and checked here, so an import takes about as long as the slower of the two.
        writing = asyncio.create_task(store.insert_missing(batch))
        await asyncio.sleep(0)  # let it start
    if writing is not None:
        added += await writing
    progress.update(unique)
    progress.finish()
    return Imported(added, unique - added, found.repeated)
