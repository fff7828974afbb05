"""The commit-order checker itself: its triggers on a scratch SQLite file, and its judgement
of hand-made histories (no servers involved)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from bench.writers import install
from tests.cache.processes.commit_order import (
    ABSENT,
    CommitLog,
    Read,
    Write,
    judge,
    read_log,
    stored_titles,
)

E = "e" * 24
F = "f" * 24


def created(event: str = E, title: str = "t0") -> Write:
    return Write(event, title, "A", sent=0.0, received=0.1, status=201)


def write(title: str, sent: float, received: float, status: int = 200, via: str = "A") -> Write:
    return Write(E, title, via, sent, received, status)


def read(
    title: str | None,
    sent: float,
    received: float | None = None,
    *,
    via: str = "B",
    cache: str = "HIT",
    status: int = 200,
    event: str = E,
) -> Read:
    done = sent + 0.01 if received is None else received
    return Read(event, title, via, "item", sent, done, status, cache)


# Two writers of E, sent in one order and committed in the other: "late" was sent last but
# committed first, "early" was sent first and committed last, so "early" is the newer.
RACE = [
    created(),
    write("early", sent=1.0, received=1.3, via="A"),
    write("late", sent=1.1, received=1.2, via="B"),
]
RACE_LOG = CommitLog.of([(E, "t0"), (E, "late"), (E, "early")])


def test_versions_are_ordered_by_commit_not_by_when_they_were_sent() -> None:
    report = judge(RACE, [read("early", sent=1.5), read("late", sent=1.5)], RACE_LOG).report

    assert [s.read.version for s in report.stale] == [RACE_LOG.positions[E, "late"]]
    (stale,) = report.stale
    assert stale.latest == RACE_LOG.positions[E, "early"]
    assert stale.newer.via == "A"  # the first acknowledged write newer than what was read
    assert stale.age == pytest.approx(0.2)  # "early" was acknowledged at 1.3


def test_reads_sent_before_an_acknowledgement_may_see_either_commit() -> None:
    reads = [
        read("t0", sent=1.15),  # nothing but the creation acknowledged yet
        read("late", sent=1.25),  # "late" acknowledged, "early" not yet
        read("early", sent=1.25),  # committed before its acknowledgement: fine too
    ]
    judgement = judge(RACE, reads, RACE_LOG)

    assert judgement.report.stale == ()
    assert judgement.ok, judgement.summary()


def test_an_older_read_after_both_acknowledgements_is_stale_whoever_sent_last() -> None:
    judgement = judge(RACE, [read("t0", sent=2.0, cache="MISS")], RACE_LOG)

    (stale,) = judgement.report.stale
    assert stale.newer.version == RACE_LOG.positions[E, "late"]  # acknowledged first
    assert judgement.report.stale_hits == 0
    summary = judgement.summary()
    assert "stale reads: 1" in summary
    assert "returned 't0'" in summary
    assert "'early'" in summary  # the newest commit acknowledged by then, by title


def test_an_event_missing_from_a_list_page_after_its_creation_is_stale() -> None:
    listed = Read(E, ABSENT, "B", "list", 0.5, 0.6, 200, "HIT")

    judgement = judge([created()], [listed], CommitLog.of([(E, "t0")]))

    (stale,) = judgement.report.stale
    assert stale.read.kind == "list"
    assert "absent from the page" in judgement.summary()


def test_titles_nobody_committed_are_phantoms_and_failed_writes_are_not_judged() -> None:
    writes = [
        created(),
        write("timed out, committed", 1.0, 1.5, status=503),
        write("refused", 2.0, 2.1, status=503),  # never committed
    ]
    log = CommitLog.of([(E, "t0"), (E, "timed out, committed")])
    reads = [
        read("t0", sent=1.6),  # the 503 acknowledged nothing
        read("timed out, committed", sent=1.7),
        read("from nowhere", sent=1.8),
        read(None, sent=1.9, status=503),
    ]

    judgement = judge(writes, reads, log)

    assert judgement.report.stale == ()
    assert [r.event for r in judgement.report.phantoms] == [E]
    assert len(judgement.report.phantoms) == 1
    assert len(judgement.report.read_errors) == 1
    assert len(judgement.report.write_errors) == 2
    assert judgement.lost == ()
    assert not judgement.ok


def test_an_acknowledged_write_the_store_never_committed_is_lost() -> None:
    writes = [created(), write("acked", 1.0, 1.1)]

    judgement = judge(writes, [], CommitLog.of([(E, "t0")]))

    assert [w.title for w in judgement.lost] == ["acked"]
    assert not judgement.ok
    assert "missing from the commit log: 1" in judgement.summary()


def test_events_are_judged_apart() -> None:
    writes = [created(), created(F, "f0"), Write(F, "f1", "A", 1.0, 1.1, 200)]
    log = CommitLog.of([(E, "t0"), (F, "f0"), (F, "f1")])

    report = judge(writes, [read("t0", sent=2.0), read("f0", sent=2.0, event=F)], log).report

    assert [s.read.event for s in report.stale] == [F]


def test_a_title_committed_twice_in_a_row_counts_at_its_newest_commit() -> None:
    # SQLite's insert_missing writes a row, then its version: two commits of one title.
    log = CommitLog.of([(E, "t0"), (E, "t0"), (F, "f0")])

    assert log.positions[E, "t0"] == 2
    assert log.latest == {E: "t0", F: "f0"}


# --- the triggers, on a scratch database ------------------------------------------------


def test_the_triggers_log_inserts_and_updates_in_commit_order(tmp_path: Path) -> None:
    db = tmp_path / "scratch.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as one:
        one.execute("PRAGMA journal_mode=WAL")
        one.execute("CREATE TABLE events (id TEXT PRIMARY KEY, title TEXT NOT NULL)")
        install(db)
        install(db)  # a second install changes nothing
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            one.execute("INSERT INTO events VALUES (?, 't0'), (?, 'f0')", (E, F))
            other.execute("UPDATE events SET title = 'by the other' WHERE id = ?", (E,))
            one.execute("BEGIN IMMEDIATE")
            one.execute("UPDATE events SET title = 'rolled back' WHERE id = ?", (E,))
            one.execute("ROLLBACK")  # never committed: not in the log
            one.execute("UPDATE events SET title = 'last' WHERE id = ?", (E,))

    log = read_log(db)

    assert list(log.positions) == [(E, "t0"), (F, "f0"), (E, "by the other"), (E, "last")]
    assert list(log.positions.values()) == [1, 2, 3, 4]
    assert log.latest == {E: "last", F: "f0"}
    assert stored_titles(db, [E, F, "0" * 24]) == {E: "last", F: "f0"}
