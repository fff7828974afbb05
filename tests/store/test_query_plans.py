"""Each documented filter with each sort reads an index in the page's order: no list page
sorts its matches in a temporary B-tree or reads every event (SQLite's query plans on a
real file, with the store's own statements)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from eventapi.events.keyset import Position
from eventapi.events.schemas import EventQuery
from eventapi.storage.sqlite import SqliteEventStore
from eventapi.storage.sqlite_query import keyset_statements, page_statement

SORTS = ["date", "-date", "title", "-title"]
FILTERS = {
    "none": {},
    "category": {"category": "music"},
}


def plan(db: Path, query: EventQuery, in_order: bool = False) -> str:
    sql, params = page_statement(query, in_order=in_order)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "plans.db"
    store = await SqliteEventStore.open(str(path), 5.0)
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")  # as a database in use would plan (an empty one too)
    return path


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_filtered_page_is_read_in_order_from_an_index(db: Path, name: str, sort: str) -> None:
    query = EventQuery.model_validate({**FILTERS[name], "sort": sort})
    shown = plan(db, query)
    assert "TEMP B-TREE" not in shown, shown
    assert "USING INDEX" in shown or "USING COVERING INDEX" in shown, shown


@pytest.mark.parametrize("sort", SORTS)
def test_a_common_word_reads_the_sort_index_and_a_rare_one_its_matches(db: Path, sort: str) -> None:
    """A text search's page either reads an index of the sort, keeping the matches (a
    common word: a few rows read), or reads the matches and sorts them (a rare one): never
    the matches looked up one by one and then the whole index scanned."""
    query = EventQuery.model_validate({"q": "festival", "sort": sort})
    in_order = plan(db, query, in_order=True)
    index = "events_by_date" if sort.endswith("date") else "events_by_title"
    assert f"SCAN e USING INDEX {index}" in in_order, in_order
    assert "TEMP B-TREE" not in in_order, in_order
    from_matches = plan(db, query, in_order=False)
    assert "SEARCH e USING INTEGER PRIMARY KEY" in from_matches, from_matches


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"organizer": "Acme"}, "events_by_organizer"),
        ({"status": "cancelled"}, "events_by_status"),
        ({"sort": "updated"}, "events_by_updated"),
        ({"sort": "-updated"}, "events_by_updated"),
        (
            {"date_from": "2025-06-01T00:00:00Z", "date_to": "2025-07-01T00:00:00Z"},
            "events_by_date",
        ),
        ({"date_from": "2025-06-01T00:00:00Z"}, "events_by_date"),
    ],
)
def test_the_new_filters_and_sorts_read_their_index(
    db: Path, params: dict[str, str], index: str
) -> None:
    """organizer, status, the updated sorts and an overlap window: each one range of its
    index, in the page's order (the window bounded below by the longest span)."""
    shown = plan(db, EventQuery.model_validate(params))
    assert f"USING INDEX {index}" in shown, shown
    assert "TEMP B-TREE" not in shown, shown


def test_an_expanded_page_reads_occurrences_by_their_start(db: Path) -> None:
    query = EventQuery.model_validate(
        {"expand": True, "date_from": "2025-06-01T00:00:00Z", "date_to": "2025-07-01T00:00:00Z"}
    )
    shown = plan(db, query)
    assert "USING INDEX events_by_date" in shown, shown
    assert "occurrences_by_start" in shown, shown


def plans(db: Path, query: EventQuery, after: Position) -> list[str]:
    """The plan of each statement of a page after ``after`` (sqlite_query.keyset_statements)."""
    with sqlite3.connect(db) as conn:
        return [
            " | ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in keyset_statements(query, after)
        ]


_DATE = "2025-06-01T00:00:00.000"
# Every sort, after an event with a value, and (the updated sorts) after one whose
# updated_at is NULL (written before it was kept): each piece of the keyset a seek.
KEYSETS = [
    *[(sort, Position(_DATE, "6" * 24)) for sort in ("date", "-date")],
    *[(sort, Position("Festival", "6" * 24)) for sort in ("title", "-title")],
    *[(sort, Position(_DATE, "6" * 24)) for sort in ("updated", "-updated")],
    *[(sort, Position(None, "6" * 24)) for sort in ("updated", "-updated")],
]
INDEXES = {"date": "events_by_date", "title": "events_by_title", "updated": "events_by_updated"}


@pytest.mark.parametrize(("sort", "after"), KEYSETS)
def test_a_cursor_page_seeks_into_the_sort_index(db: Path, sort: str, after: Position) -> None:
    """A page after a cursor starts where the cursor is, in the sort's index (a SEARCH on
    the keyset's columns, not a SCAN from the start nor a sort), so page 50,000 costs what
    page 1 does; the statements after a NULL updated_at are seeks too."""
    shown = plans(db, EventQuery.model_validate({"sort": sort}), after)
    index = INDEXES[sort.removeprefix("-")]
    for one in shown:
        assert f"SEARCH e USING INDEX {index} (" in one, shown
        assert "TEMP B-TREE" not in one, shown


@pytest.mark.parametrize("sort", ["date", "-date", "title", "-title"])
def test_a_category_cursor_page_seeks_into_the_category_index(db: Path, sort: str) -> None:
    key = "Festival" if sort.endswith("title") else _DATE
    query = EventQuery.model_validate({"category": "music", "sort": sort})
    shown = plans(db, query, Position(key, "6" * 24))
    index = "events_by_category_title" if sort.endswith("title") else "events_by_category"
    [one] = shown
    assert f"SEARCH e USING INDEX {index} (category_key=? AND (" in one, shown
    assert "TEMP B-TREE" not in one, shown


@pytest.mark.parametrize("sort", ["date", "-date"])
def test_a_window_cursor_page_seeks_from_the_cursor(db: Path, sort: str) -> None:
    """Of the window's bound and the cursor's, the page seeks by the cursor's (not from
    date_from, which would read every event of the window before the cursor)."""
    query = EventQuery.model_validate(
        {"sort": sort, "date_from": "2025-01-01T00:00:00Z", "date_to": "2025-12-31T00:00:00Z"}
    )
    [one] = plans(db, query, Position(_DATE, "6" * 24))
    assert "USING INDEX events_by_date ((date_utc,id)" in one or (
        "USING INDEX events_by_date (date_utc>? AND (date_utc,id)" in one
    ), one
    assert "TEMP B-TREE" not in one, one
