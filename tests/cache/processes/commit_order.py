"""A read-your-acknowledged-writes checker for CONCURRENT writers of one event.

history.py orders an event's versions by the one writer that numbers them. With several
writers of one event racing, only the store knows which of their writes came last, so here
versions are ordered by the store's COMMIT order, as the bench's concurrent-writers row
orders them (bench/writers.py: ``install`` puts triggers on the ``events`` table that append
(event id, title) to a side table in the writing transaction itself; SQLite runs one write
transaction at a time, so the side table's rowid order is the commit order, whichever
process or connection wrote). ``install`` must run once the servers have created the
schema, before any write to be judged.

Every write sets a title no other write uses; the title a read returns names the commit it
saw. A read is STALE if its commit is older than the newest commit among the writes
acknowledged (200, or 201 for the creation) before the read was sent. The judging itself is
history.check's, on commit positions instead of client-side version numbers, so its Report
(and summary) stays the one report of every multi-process test.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.writers import committed_titles
from tests.cache.processes import history
from tests.cache.processes.history import ReadKind, Report, Stale

# Title of a tracked event missing from a list page that should hold it (no real title is
# empty: the API refuses blank titles).
ABSENT = ""
# history.check's version of a read whose title no commit of its event ever had: it is not
# among the versions tried, so the read counts as a phantom.
_NEVER_COMMITTED = -2


@dataclass(frozen=True)
class CommitLog:
    """The side table as read after the run."""

    positions: Mapping[tuple[str, str], int]  # (event, title) -> its newest commit
    latest: Mapping[str, str]  # event -> the title of its newest commit

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str]]) -> CommitLog:
        """From (event, title) rows in commit order. A title committed twice (SQLite's
        insert_missing writes a row, then its version) counts at its newest commit: the
        same content, still current until another title is committed."""
        positions: dict[tuple[str, str], int] = {}
        latest: dict[str, str] = {}
        for position, (event, title) in enumerate(rows, start=1):
            positions[event, title] = position
            latest[event] = title
        return cls(positions, latest)


def read_log(db: Path) -> CommitLog:
    return CommitLog.of(committed_titles(db))


def stored_titles(db: Path, events: Sequence[str]) -> dict[str, str]:
    """What the database holds now: event -> title (deleted events left out)."""
    marks = ", ".join("?" * len(events))
    with contextlib.closing(sqlite3.connect(db, timeout=10.0)) as conn:
        rows = conn.execute(f"SELECT id, title FROM events WHERE id IN ({marks})", list(events))
        return {str(event): str(title) for event, title in rows}


@dataclass(frozen=True, slots=True)
class Write:
    event: str
    title: str  # unique to this write
    via: str
    sent: float
    received: float
    status: int


@dataclass(frozen=True, slots=True)
class Read:
    event: str
    title: str | None  # None: no 200 with a title; ABSENT: missing from a list page
    via: str
    kind: ReadKind
    sent: float
    received: float
    status: int
    cache: str = ""  # X-Cache


@dataclass(frozen=True)
class Judgement:
    """A run judged: history's report, and what only commit order can tell."""

    report: Report  # history's, with commit positions as versions
    lost: tuple[Write, ...]  # acknowledged, yet no commit of its title: the store lost it
    titles: Mapping[tuple[str, int], str]  # (event, position) -> title, to describe reads

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.lost

    def summary(self, origin: float | None = None, examples: int = 5) -> str:
        """history's summary (commit positions as versions), its examples with titles."""
        if origin is None:
            origin = min((w.sent for w in self.report.writes), default=0.0)
        lines = [self.report.summary(origin, examples=0)]
        lines.append(f"acknowledged writes missing from the commit log: {len(self.lost)}")
        lines += ["  " + self.describe(s, origin) for s in self.report.stale[:examples]]
        lines += [
            f"  write error: {self.titles.get((w.event, w.version), '(never committed)')!r} of "
            f"{w.event[-6:]} via {w.via} -> {w.status} after {w.seconds * 1000:.0f} ms"
            for w in self.report.write_errors[:examples]
        ]
        return "\n".join(lines)

    def describe(self, stale: Stale, origin: float) -> str:
        r, newer = stale.read, stale.newer
        # (Commit positions start at 1: ABSENT (-1) and None name no commit.)
        seen = self.titles.get((r.event, r.version or 0), "(absent from the page)")
        return (
            f"{r.kind} {r.event[-6:]} via {r.via} sent t={r.sent - origin:.3f}s returned "
            f"{seen!r} (commit {r.version}, X-Cache {r.cache or '-'}), but "
            f"{self.titles[r.event, newer.version]!r} (commit {newer.version}) was acked via "
            f"{newer.via} at t={newer.received - origin:.3f}s, {stale.age * 1000:.0f} ms "
            f"before; {self.titles[r.event, stale.latest]!r} (commit {stale.latest}) by then"
        )


def judge(writes: Iterable[Write], reads: Iterable[Read], log: CommitLog) -> Judgement:
    """Every read against the writes acknowledged before it was sent, in commit order."""
    as_versions: list[history.Write] = []
    lost: list[Write] = []
    for n, w in enumerate(writes):
        position = log.positions.get((w.event, w.title))
        if position is None:
            # Never committed: a version no read can return (a failed write, or a lost one).
            position = _NEVER_COMMITTED - 1 - n
            if w.status in history.ACKNOWLEDGED:
                lost.append(w)
        as_versions.append(history.Write(w.event, position, w.via, w.sent, w.received, w.status))
    report = history.check(as_versions, (_versioned(r, log) for r in reads))
    titles = {(event, position): title for (event, title), position in log.positions.items()}
    return Judgement(report, tuple(lost), titles)


def _versioned(r: Read, log: CommitLog) -> history.Read:
    version: int | None
    if r.title is None:
        version = None
    elif r.title == ABSENT:
        version = history.ABSENT
    else:
        version = log.positions.get((r.event, r.title), _NEVER_COMMITTED)
    return history.Read(r.event, version, r.via, r.kind, r.sent, r.received, r.status, r.cache)
