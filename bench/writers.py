"""Scenario 4 with CONCURRENT writers: Zipf reads over every id, and writes aimed at the
hottest few ids with no limit on how many of one id are in flight, so several writes of
one id race through both server processes at once.

With one write per id in flight (bench/mixed.py) the client numbers versions in commit
order. With racing writers only the store knows which write of an id came last, so
versions are ordered by the store's COMMIT order: before the servers start, ``install``
puts triggers on the ``events`` table (AFTER INSERT, AFTER UPDATE OF title) that append
(id, title) to a side table in the writing transaction itself. SQLite runs one write
transaction at a time (and a rolled-back one takes its side-table row with it), so the
side table's rowid order is the commit order, whichever process or connection wrote.

Every write sets a title no other write of its id uses ("<base title> v<N>"), so the
title a read returns names the commit it saw. After the run, ``Judge`` places each
version at its commit and calls a read sent at time t that returned version v STALE if a
write acknowledged (200) before t committed after v's write: v was already overwritten by
a value the client knew of when it asked. A version no commit of its id ever had is stale
too (the seeded title, v0, is the oldest commit of its id).
"""

from __future__ import annotations

import bisect
import contextlib
import random
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.loadgen import Request
from bench.mixed import version_of
from bench.workloads import ITEM, Zipf

SIDE_TABLE = "bench_commit_order"
_INSTALL = f"""
CREATE TABLE IF NOT EXISTS {SIDE_TABLE} (
    position INTEGER PRIMARY KEY,  -- rowid: max + 1 inside the write lock, so commit order
    event_id TEXT NOT NULL,
    title    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS {SIDE_TABLE}_insert AFTER INSERT ON events
BEGIN INSERT INTO {SIDE_TABLE} (event_id, title) VALUES (NEW.id, NEW.title); END;
CREATE TRIGGER IF NOT EXISTS {SIDE_TABLE}_update AFTER UPDATE OF title ON events
BEGIN INSERT INTO {SIDE_TABLE} (event_id, title) VALUES (NEW.id, NEW.title); END;
"""
SEEDED = 0  # the version of a title no write of the run set: the seeded one
_TITLE_VERSION = re.compile(r" v(\d+)\Z")


def title_version(title: str) -> int:
    """The version number at the end of a title (SEEDED if none)."""
    match = _TITLE_VERSION.search(title)
    return int(match.group(1)) if match else SEEDED


def install(database: Path) -> None:
    """The side table and its triggers, in the (seeded) SQLite file at ``database``, before
    the servers that write it start."""
    with contextlib.closing(sqlite3.connect(database, timeout=30.0, isolation_level=None)) as db:
        db.executescript(_INSTALL)


def committed_titles(database: Path) -> list[tuple[str, str]]:
    """(id, title written) of every committed insert or title update since ``install``, in
    commit order. Read-only: the servers may still be running. (The multi-process tests
    judge their histories with it too: tests/cache/processes/commit_order.py.)"""
    uri = f"{database.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30.0)) as db:
        rows = db.execute(f"SELECT event_id, title FROM {SIDE_TABLE} ORDER BY position")
        return [(str(event_id), str(title)) for event_id, title in rows]


def commit_log(database: Path) -> list[tuple[str, int]]:
    """(id, version written) of every committed insert or title update, in commit order."""
    return [(event_id, title_version(t)) for event_id, t in committed_titles(database)]


@dataclass(frozen=True, slots=True)
class Ack:
    """A write of ``version`` to ``event_id`` answered 200 at ``at`` (ns)."""

    event_id: str
    version: int
    at: int


@dataclass(frozen=True, slots=True)
class Read:
    """A read of ``event_id`` sent at ``sent`` (ns, same clock as Ack.at) that returned
    ``seen``."""

    event_id: str
    sent: int
    seen: int


@dataclass
class Stale:
    count: int = 0
    first: str = ""  # the first stale read, described


class Judge:
    """Stale reads judged in the store's commit order (see the module's docstring)."""

    def __init__(self, commits: Iterable[tuple[str, int]], acks: Iterable[Ack]) -> None:
        # (id, version) -> its commit's position, from 1 (the first commit of a version;
        # the seeded title, never written by the run, is 0).
        self._position: dict[tuple[str, int], int] = {}
        for position, (event_id, version) in enumerate(commits, start=1):
            self._position.setdefault((event_id, version), position)
        by_id: dict[str, list[Ack]] = {}
        for ack in acks:
            by_id.setdefault(ack.event_id, []).append(ack)
        # Per id: the acknowledgement times in order, and the newest commit among the
        # writes acknowledged up to each of them.
        self._times: dict[str, list[int]] = {}
        self._newest: dict[str, list[tuple[int, Ack] | None]] = {}  # (its position, write)
        self.out_of_order = 0  # acknowledged after a write of its id that committed later
        self.unrecorded = 0  # acknowledged, yet no commit of it: a lost write
        for event_id, listed in by_id.items():
            listed.sort(key=lambda ack: ack.at)
            newest: tuple[int, Ack] | None = None
            prefix = []
            for ack in listed:
                at = self._position.get((event_id, ack.version))
                if at is None:
                    self.unrecorded += 1
                elif newest is not None and at < newest[0]:
                    self.out_of_order += 1
                else:
                    newest = (at, ack)
                prefix.append(newest)
            self._times[event_id] = [ack.at for ack in listed]
            self._newest[event_id] = prefix

    def committed(self, event_id: str, version: int) -> int | None:
        """The commit position of ``version`` of ``event_id`` (0: seeded), None if never."""
        if version == SEEDED:
            return 0
        return self._position.get((event_id, version))

    def expected(self, read: Read) -> tuple[int, Ack] | None:
        """(commit position, write) of the newest commit among the writes acknowledged
        before ``read`` was sent (None: none was)."""
        times = self._times.get(read.event_id, [])
        acked = bisect.bisect_left(times, read.sent)  # acknowledgements strictly before it
        return self._newest[read.event_id][acked - 1] if acked else None

    def why_stale(self, read: Read) -> str:
        """Why ``read`` is stale ("" when it is not)."""
        got = self.committed(read.event_id, read.seen)
        if got is None:
            return f"{read.event_id}: v{read.seen}, which no commit wrote"
        newest = self.expected(read)
        if newest is None or got >= newest[0]:
            return ""
        position, ack = newest
        ms = (read.sent - ack.at) / 1e6
        return (
            f"{read.event_id}: v{read.seen} (commit {got}) sent {ms:.1f} ms after "
            f"v{ack.version} (commit {position}) was acknowledged"
        )

    def stale(self, reads: Iterable[Read]) -> Stale:
        out = Stale()
        for read in reads:
            why = self.why_stale(read)
            if why:
                out.count += 1
                out.first = out.first or why
        return out


@dataclass
class WriterCounts:
    reads: int = 0
    writes: int = 0
    failed_reads: int = 0
    failed_writes: int = 0
    overlapped: int = 0  # writes sent while another write of their id was in flight
    most_in_flight: int = 0  # the most writes of one id in flight at once
    write_ms: list[float] = field(default_factory=list)


class ConcurrentWriters:
    """Reads: ids drawn by Zipf popularity over every id. Writes (``write_fraction`` of
    requests): PATCHes of the title to the next version of one of the ``hot`` most popular
    ids, whatever else of that id is in flight. Records every acknowledged write and every
    answered read for Judge."""

    def __init__(
        self,
        titles: Mapping[str, str],
        *,
        s: float = 1.1,
        write_fraction: float = 0.05,
        hot: int = 4,
        seed: int = 17,
    ) -> None:
        rng = random.Random(seed)
        self._by_rank = rng.sample(list(titles), len(titles))  # the k-th most popular id
        self._zipf = Zipf(len(titles), s, seed=seed + 1)
        self._rng = rng
        self._titles = titles
        self.hot: Sequence[str] = self._by_rank[: max(1, min(hot, len(titles)))]
        self.write_fraction = write_fraction
        self._issued: Counter[str] = Counter()  # versions sent per id
        self._in_flight: Counter[str] = Counter()  # writes in flight per id
        self.acks: list[Ack] = []
        self.reads: list[Read] = []
        self.measured_from = 0  # index in reads of the first measured one
        self.counts = WriterCounts()

    def reset_counts(self) -> WriterCounts:
        """Start counting afresh (after a warm-up); returns the counts so far. The reads
        and acknowledgements are kept: the judgement needs the whole history."""
        before, self.counts = self.counts, WriterCounts()
        self.measured_from = len(self.reads)
        return before

    def choose(self) -> Request:
        if self._rng.random() < self.write_fraction:
            return self._write(self.hot[int(self._rng.random() * len(self.hot))])
        event_id = self._by_rank[self._zipf.next()]
        return Request("GET", ITEM.format(event_id), b"", ("read", event_id, 0))

    def _write(self, event_id: str) -> Request:
        self._issued[event_id] += 1
        version = self._issued[event_id]
        if self._in_flight[event_id]:
            self.counts.overlapped += 1
        self._in_flight[event_id] += 1
        self.counts.most_in_flight = max(self.counts.most_in_flight, self._in_flight[event_id])
        body = orjson.dumps({"title": f"{self._titles[event_id]} v{version}"})
        return Request("PATCH", ITEM.format(event_id), body, ("write", event_id, version))

    def on_response(
        self, req: Request, status: int, head: bytes, body: bytes, t0: int, t1: int
    ) -> None:
        kind, event_id, version = req.tag
        counts = self.counts
        if kind == "write":
            counts.writes += 1
            counts.write_ms.append((t1 - t0) / 1e6)
            self._in_flight[event_id] -= 1
            if status == 200:
                self.acks.append(Ack(event_id, version, t1))
            else:
                counts.failed_writes += 1
            return
        counts.reads += 1
        if status != 200:
            counts.failed_reads += 1
            return
        self.reads.append(Read(event_id, t0, version_of(body)))
