"""Each documented filter with each sort reads an index in the page's order: no list page
sorts its matches in a temporary B-tree or reads every event (SQLite's query plans on a
real file, with the store's own statements)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from eventapi.events.schemas import EventQuery
from eventapi.storage.sqlite import SqliteEventStore
from eventapi.storage.sqlite_query import page_statement

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
