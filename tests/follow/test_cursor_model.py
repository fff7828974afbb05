"""The change cursor's protocol, over every interleaving of a small model (the explorer of
tests/cache/model): writers of one event, the process's change watch, a reader that takes
the watch's head as its cursor and then reads the store, and at the end a follower that
applies the feed from that cursor to what the reader read. The follower's copy must equal
the store, whatever the order of steps.

Each step is named after the code it stands for:
- SQLite: ``commit`` (sqlite.py: the write and its record in one transaction, seqs in
  commit order);
- MongoDB: ``_intent`` (the record, first), ``find_one_and_update`` (the write; the writers'
  writes may land in any order), ``_settle`` (done), or ``died`` after its intent (the
  record settles only by the store timeout: ``settled_by_time``, which the model allows once
  the writer can no longer write);
- ``ChangeWatch.poll`` (watch.py: head = the newest seq with every one up to it settled);
- ``EventCache._cursor`` then ``store.get`` (cache/events.py: the cursor is taken before the
  store read); the mutant reads first and is caught.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from tests.cache.model.explore import explore

WRITERS = 3
POLLS = 3


@dataclass(frozen=True)
class Record:
    seq: int
    writer: int
    settled: bool


@dataclass(frozen=True)
class State:
    value: int = 0  # the event as stored (0: as it began)
    log: tuple[Record, ...] = ()
    # Per writer: "ready", "intent" (recorded, not written), "written", "done", "dead".
    writers: tuple[str, ...] = ("ready",) * WRITERS
    head: int = 0  # the watch's
    polls: int = 0
    cursor: int | None = None
    read: int | None = None  # the value the reader read


def head_of(log: tuple[Record, ...]) -> int:
    head = 0
    for record in log:  # in seq order
        if not record.settled:
            break
        head = record.seq
    return head


def settle(log: tuple[Record, ...], writer: int) -> tuple[Record, ...]:
    return tuple(replace(r, settled=True) if r.writer == writer else r for r in log)


def successors(state: State, mongo: bool, cursor_first: bool) -> list[tuple[str, State]]:
    steps: list[tuple[str, State]] = []
    for w, phase in enumerate(state.writers):

        def moved(to: str, w: int = w, **changes: object) -> State:
            writers = (*state.writers[:w], to, *state.writers[w + 1 :])
            return replace(state, writers=writers, **changes)  # type: ignore[arg-type]

        seq = len(state.log) + 1
        if phase == "ready" and not mongo:
            log = (*state.log, Record(seq, w, settled=True))
            steps.append((f"commit(w{w})", moved("done", value=w + 1, log=log)))
        elif phase == "ready":
            log = (*state.log, Record(seq, w, settled=False))
            steps.append((f"_intent(w{w})", moved("intent", log=log)))
        elif phase == "intent":
            steps.append((f"find_one_and_update(w{w})", moved("written", value=w + 1)))
            steps.append((f"died(w{w})", moved("dead")))
        elif phase == "written":
            steps.append((f"_settle(w{w})", moved("done", log=settle(state.log, w))))
        elif phase == "dead" and any(r.writer == w and not r.settled for r in state.log):
            steps.append((f"settled_by_time(w{w})", replace(state, log=settle(state.log, w))))
    if state.polls < POLLS:
        polled = replace(state, head=head_of(state.log), polls=state.polls + 1)
        steps.append(("ChangeWatch.poll", polled))
    take_cursor = replace(state, cursor=state.head)
    read = replace(state, read=state.value)
    if cursor_first:
        if state.cursor is None:
            steps.append(("EventCache._cursor", take_cursor))
        elif state.read is None:
            steps.append(("store.get", read))
    elif state.read is None:
        steps.append(("store.get", read))
    elif state.cursor is None:
        steps.append(("EventCache._cursor", take_cursor))
    return steps


def check(state: State) -> str | None:
    finished = all(p in ("done", "dead") for p in state.writers) and all(
        r.settled for r in state.log
    )
    if not finished or state.cursor is None or state.read is None:
        return None
    # The follower: the changes after the cursor (each with the event as it is now).
    copy = state.value if any(r.seq > state.cursor for r in state.log) else state.read
    if copy != state.value:
        return f"the follower holds {copy}, the store {state.value}"
    return None


@pytest.mark.parametrize("mongo", [False, True], ids=["sqlite", "mongodb"])
def test_a_follower_from_a_reads_cursor_misses_no_change(mongo: bool) -> None:
    outcome = explore(State(), lambda s: successors(s, mongo, cursor_first=True), check)

    assert outcome.ok, (outcome.violation, outcome.trace)
    assert outcome.states > 1000  # every interleaving of the model, not a few


@pytest.mark.parametrize("mongo", [False, True], ids=["sqlite", "mongodb"])
def test_the_checker_finds_the_cursor_taken_after_the_read(mongo: bool) -> None:
    outcome = explore(State(), lambda s: successors(s, mongo, cursor_first=False), check)

    assert not outcome.ok
    assert outcome.trace.index("store.get") < outcome.trace.index("EventCache._cursor")
