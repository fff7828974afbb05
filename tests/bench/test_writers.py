"""Scenario 4 with concurrent writers (bench/writers.py): stale reads judged in the store's
commit order on hand-made histories, the commit log the triggers keep in a real SQLite
file, and the workload's bookkeeping."""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path

import orjson
import pytest

from bench.loadgen import Request
from bench.seed import generate, seed_file
from bench.writers import (
    SEEDED,
    Ack,
    ConcurrentWriters,
    Judge,
    Read,
    commit_log,
    install,
    title_version,
)
from eventapi.storage.sqlite import register_functions

E, F = "e" * 24, "f" * 24


def stale(judge: Judge, *reads: Read) -> list[bool]:
    return [bool(judge.why_stale(r)) for r in reads]


def test_an_older_commit_read_after_a_newer_one_was_acknowledged_is_stale() -> None:
    judge = Judge([(E, 1), (E, 2)], [Ack(E, 1, at=10), Ack(E, 2, at=20)])
    assert stale(judge, Read(E, 25, 1), Read(E, 25, 2), Read(E, 25, SEEDED)) == [
        True,
        False,
        True,
    ]
    # Sent before v2's acknowledgement (or at the same instant): v1 is all it may expect.
    assert stale(judge, Read(E, 15, 1), Read(E, 20, 1), Read(E, 5, SEEDED)) == [False] * 3
    assert judge.out_of_order == judge.unrecorded == 0
    ms = 1_000_000  # the load generator's clock counts nanoseconds
    judge = Judge([(E, 1), (E, 2)], [Ack(E, 1, at=10 * ms), Ack(E, 2, at=20 * ms)])
    assert judge.why_stale(Read(E, 25 * ms, 1)) == (
        f"{E}: v1 (commit 1) sent 5.0 ms after v2 (commit 2) was acknowledged"
    )


def test_a_version_committed_after_the_acknowledged_one_is_not_stale() -> None:
    # v2 acknowledged; v3 committed after it, its answer not back yet: a read may show it.
    judge = Judge([(E, 1), (E, 2), (E, 3)], [Ack(E, 1, at=10), Ack(E, 2, at=20)])
    assert stale(judge, Read(E, 25, 3), Read(E, 15, 3), Read(E, 15, 2)) == [False] * 3
    assert judge.expected(Read(E, 25, 3)) == (2, Ack(E, 2, at=20))
    assert judge.expected(Read(E, 5, 3)) is None


def test_two_writes_in_flight_committed_in_the_reverse_of_their_numbering() -> None:
    # v1 and v2 sent together; v2 commits first, v1 last; v2 is answered first (t=10),
    # v1 next (t=20). The stored value is v1, whatever the version numbers say.
    judge = Judge([(E, 2), (E, 1)], [Ack(E, 2, at=10), Ack(E, 1, at=20)])
    assert judge.out_of_order == 0
    assert stale(judge, Read(E, 15, 2), Read(E, 15, 1)) == [False, False]
    # After both: v1 is the newest commit; v2, the higher number, is the stale one.
    assert stale(judge, Read(E, 25, 1), Read(E, 25, 2)) == [False, True]
    assert judge.why_stale(Read(E, 25, 2)).endswith(
        "v2 (commit 1) sent 0.0 ms after v1 (commit 2) was acknowledged"
    )
    # A client-order check would call Read(E, 25, 1) stale (1 < 2): here it is not.


def test_two_writes_in_flight_acknowledged_in_the_reverse_of_their_commit_order() -> None:
    # v1 and v2 sent together; v1 commits first, v2 after it, but v2's answer comes back
    # first (t=10), v1's later (t=20): v1's acknowledgement tells nothing newer than v2's.
    judge = Judge([(E, 1), (E, 2)], [Ack(E, 2, at=10), Ack(E, 1, at=20)])
    assert judge.out_of_order == 1
    assert stale(judge, Read(E, 25, 2), Read(E, 15, 2)) == [False, False]
    assert stale(judge, Read(E, 25, 1), Read(E, 15, 1)) == [True, True]  # v2 acknowledged first
    assert stale(judge, Read(E, 5, 1)) == [False]


def test_ids_are_judged_apart_and_unknown_versions_are_stale() -> None:
    judge = Judge([(E, 1), (F, 1), (E, 2)], [Ack(E, 2, at=10), Ack(F, 1, at=30)])
    assert stale(judge, Read(F, 20, SEEDED), Read(F, 40, SEEDED), Read(E, 40, 2)) == [
        False,
        True,
        False,
    ]
    assert judge.why_stale(Read(E, 5, 7)) == f"{E}: v7, which no commit wrote"
    assert stale(judge, Read("0" * 24, 50, SEEDED)) == [False]  # never written


def test_an_acknowledged_write_with_no_commit_is_counted_not_trusted() -> None:
    judge = Judge([(E, 1)], [Ack(E, 1, at=10), Ack(E, 2, at=20)])
    assert judge.unrecorded == 1
    assert stale(judge, Read(E, 30, 1)) == [False]  # v2 cannot be placed: v1 is expected


def test_counts_the_stale_reads_and_names_the_first() -> None:
    judge = Judge([(E, 1), (E, 2)], [Ack(E, 1, at=10), Ack(E, 2, at=20)])
    result = judge.stale([Read(E, 5, SEEDED), Read(E, 30, 1), Read(E, 40, SEEDED)])
    assert result.count == 2
    assert result.first.startswith(f"{E}: v1 (commit 1) sent ")
    assert judge.stale([]).count == 0


def test_titles_name_their_version() -> None:
    assert title_version("Cloud Summit 2025 #3 v12") == 12
    assert title_version("Cloud Summit 2025 #3") == SEEDED
    assert title_version("Jazz v2 Night") == SEEDED


def test_the_triggers_record_commit_order(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    events = generate(3)
    seed_file(database, events, out=io.StringIO())
    install(database)
    install(database)  # again: nothing added twice
    a, b, c = (e.id for e in events)
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as db:
        register_functions(db)  # the store's triggers (its search index) call them
        for event_id, title in ((b, "B v1"), (a, "A v1"), (b, "B v2")):
            db.execute("UPDATE events SET title = ? WHERE id = ?", (title, event_id))
        db.execute("UPDATE events SET location = 'x' WHERE id = ?", (a,))  # not a title
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE events SET title = 'C v1' WHERE id = ?", (c,))
        db.execute("ROLLBACK")  # never committed: no record
        db.execute(
            "INSERT OR REPLACE INTO events (id, title, date_utc, date_naive) "
            "SELECT id, 'C v2', date_utc, date_naive FROM events WHERE id = ?",
            (c,),
        )
    assert commit_log(database) == [(b, 1), (a, 1), (b, 2), (c, 2)]


def respond(
    work: ConcurrentWriters, req: Request, status: int, body: bytes, t0: int, t1: int
) -> None:
    work.on_response(req, status, b"HTTP/1.1 200 OK\r\n\r\n", body, t0, t1)


def test_the_workload_lets_writes_of_one_id_overlap() -> None:
    titles = {f"{n:024x}": f"Event {n}" for n in range(50)}
    work = ConcurrentWriters(titles, write_fraction=1.0, hot=2)
    writes = [work.choose() for _ in range(20)]
    assert {w.method for w in writes} == {"PATCH"}
    assert {w.path.rsplit("/", 1)[1] for w in writes} == set(work.hot)
    for event_id in work.hot:
        versions = [w.tag[2] for w in writes if w.tag[1] == event_id]
        assert versions == list(range(1, len(versions) + 1))  # each version once
        assert all(
            orjson.loads(w.body)["title"] == f"{titles[event_id]} v{w.tag[2]}"
            for w in writes
            if w.tag[1] == event_id
        )
    assert work.counts.overlapped == 18  # all but the first write of each id
    assert work.counts.most_in_flight >= 10
    first, second = writes[0], writes[1]
    respond(work, first, 200, b"{}", 1, 5)
    respond(work, second, 503, b"{}", 2, 6)
    assert work.acks == [Ack(first.tag[1], first.tag[2], 5)]
    assert (work.counts.writes, work.counts.failed_writes) == (2, 1)


def test_the_workload_records_reads_and_keeps_history_over_a_reset() -> None:
    titles = {f"{n:024x}": f"Event {n}" for n in range(50)}
    work = ConcurrentWriters(titles, write_fraction=0.0)
    reads = [work.choose() for _ in range(3)]
    assert {r.method for r in reads} == {"GET"}
    body = orjson.dumps({"id": reads[0].tag[1], "title": "Event 1 v4"})
    respond(work, reads[0], 200, body, 7, 9)
    respond(work, reads[1], 404, b"{}", 8, 9)
    warm = work.reset_counts()
    assert (warm.reads, warm.failed_reads) == (2, 1)
    respond(work, reads[2], 200, b'{"title":"Event 2"}', 10, 12)
    assert work.reads == [Read(reads[0].tag[1], 7, 4), Read(reads[2].tag[1], 10, SEEDED)]
    assert work.measured_from == 1
    assert work.counts.reads == 1


@pytest.mark.parametrize("hot", [0, 1, 500])
def test_the_hot_ids_are_the_most_popular(hot: int) -> None:
    titles = {f"{n:024x}": f"Event {n}" for n in range(50)}
    work = ConcurrentWriters(titles, hot=hot)
    assert len(work.hot) == max(1, min(hot, 50))
    assert len(set(work.hot)) == len(work.hot)
