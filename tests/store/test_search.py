"""q= on SQLite through the trigram index means what it meant as a Python scan: a
case-insensitive (casefolded) substring of the title, the description or the location.
A property test on a real SQLite file compares the two on random data, Unicode included
(ß folds to ss, final sigma, dotted I), with needles both random and cut from the data."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from eventapi.events.schemas import EventCreate, EventQuery, EventRead
from eventapi.storage.sqlite import SqliteEventStore, register_functions
from eventapi.storage.sqlite_query import page_statement

ALPHABET = "abcABC xyz\"'%_*ßẞΣσςİıﬁ1"  # noqa: RUF001 (confusable letters on purpose)
TEXT = st.text(ALPHABET, min_size=1, max_size=12)
OPTIONAL = st.none() | TEXT
EVENTS = st.lists(st.tuples(TEXT, OPTIONAL, OPTIONAL), min_size=1, max_size=6)


def matches(event: EventRead, needle: str) -> bool:
    """The meaning of q=, as the store had it before the index (storage/sqlite.py)."""
    wanted = needle.casefold()
    return any(
        text is not None and wanted in text.casefold()
        for text in (event.title, event.description, event.location)
    )


async def search_both_ways(rows: list[tuple[str, str | None, str | None]], needle: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteEventStore.open(str(Path(tmp) / "s.db"), 5.0)
        try:
            stored: list[EventRead] = []
            for title, description, location in rows:
                try:
                    data = EventCreate(
                        title=title,
                        description=description,
                        location=location,
                        date="2025-06-01T12:00:00",  # type: ignore[arg-type]
                    )
                except ValidationError:
                    continue  # a value the API refuses never reaches the store
                stored.append((await store.create(data)).event)
            try:
                query = EventQuery.model_validate({"q": needle, "limit": 100})
            except ValidationError:
                return
            found = {e.id for e in (await store.list(query)).items}
            expected = {e.id for e in stored if matches(e, query.q or "")}
            assert found == expected, (
                needle,
                [(e.title, e.description, e.location) for e in stored],
            )
        finally:
            await store.close()
        # Both ways of reading a search's page (storage/sqlite.py, _read_in_order): the
        # same events in the same order.
        with sqlite3.connect(Path(tmp) / "s.db") as conn:
            register_functions(conn)
            pages = [
                [row[0] for row in conn.execute(*page_statement(query, in_order=in_order))]
                for in_order in (False, True)
            ]
        assert pages[0] == pages[1]
        assert set(pages[0]) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=EVENTS, needle=TEXT)
def test_a_random_needle_finds_what_a_scan_finds(
    rows: list[tuple[str, str | None, str | None]], needle: str
) -> None:
    asyncio.run(search_both_ways(rows, needle))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=EVENTS, data=st.data())
def test_a_needle_cut_from_the_data_finds_what_a_scan_finds(
    rows: list[tuple[str, str | None, str | None]], data: st.DataObject
) -> None:
    texts = [t for row in rows for t in row if t]
    text = data.draw(st.sampled_from(texts))
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    asyncio.run(search_both_ways(rows, text[start:end].swapcase()))


async def test_a_long_needle_is_answered_from_the_index(tmp_path: Path) -> None:
    """EXPLAIN: q= of 3 characters or more reads the trigram index, not every row."""
    store = await SqliteEventStore.open(str(tmp_path / "s.db"), 5.0)
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE rowid IN "
            "(SELECT rowid FROM events_search WHERE events_search MATCH ?)",
            ('"fes"',),
        ).fetchall()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH events USING INTEGER PRIMARY KEY" in details, details
    assert "SCAN events_search VIRTUAL TABLE INDEX" in details, details
    assert not re.search(r"SCAN events\b(?!_search)", details), details


async def test_a_database_made_before_the_index_and_counts_gets_them_at_open(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "old.db")
    store = await SqliteEventStore.open(path, 5.0)
    data = EventCreate(title="Straße Festival", date="2025-06-01T12:00:00")  # type: ignore[arg-type]
    created = (await store.create(data)).event
    await store.close()
    with sqlite3.connect(path) as conn:  # as a database made before the index looks
        for table in ("events_search", "event_counts", "derived_ready"):
            conn.execute(f"DROP TABLE {table}")
        for name in ("search_insert", "search_update", "search_delete"):
            conn.execute(f"DROP TRIGGER events_{name}")
        for name in ("count_insert", "count_update", "count_delete"):
            conn.execute(f"DROP TRIGGER events_{name}")
    store = await SqliteEventStore.open(path, 5.0)
    try:
        page = await store.list(EventQuery.model_validate({"q": "STRASSE"}))
        assert [e.id for e in page.items] == [created.id]
        assert (await store.list(EventQuery.model_validate({}))).total == 1  # counted too
    finally:
        await store.close()


@pytest.mark.parametrize("needle", ["fe", "e"])
async def test_a_short_needle_is_still_found(tmp_path: Path, needle: str) -> None:
    store = await SqliteEventStore.open(str(tmp_path / "s.db"), 5.0)
    try:
        data = EventCreate(title="Festival", date="2025-06-01T12:00:00")  # type: ignore[arg-type]
        created = (await store.create(data)).event
        page = await store.list(EventQuery.model_validate({"q": needle.upper()}))
        assert [e.id for e in page.items] == [created.id]
    finally:
        await store.close()


async def test_the_index_follows_updates_deletes_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await SqliteEventStore.open(str(path), 5.0)

    async def found(needle: str) -> list[str]:
        page = await store.list(EventQuery.model_validate({"q": needle}))
        return [e.id for e in page.items]

    try:
        data = EventCreate(title="Harbour Gala", date="2025-06-01T12:00:00")  # type: ignore[arg-type]
        one = (await store.create(data)).event.id
        two = (await store.create(data)).event.id
        await store.update(one, {"title": "Riverside Picnic"})
        assert await found("harbour") == [two]
        assert await found("riverside") == [one]
        await store.update(two, {"location": "Old Harbour Pier"})  # title unchanged
        assert sorted(await found("harbour")) == [two]
        assert await found("pier") == [two]
        await store.delete(two)
        assert await found("harbour") == []
        assert await store.delete_all() == 1
        assert await found("riverside") == []
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM events_search").fetchone() == (0,)
