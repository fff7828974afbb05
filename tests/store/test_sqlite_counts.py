"""The counts SQLite keeps beside the events (event_counts, read for X-Total-Count of a page
with no filter or only category=) always equal a count of the rows themselves, whatever
sequence of creates, category changes, deletes and bulk writes led there."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from eventapi.events.schemas import fields_of
from eventapi.storage.sqlite import SqliteEventStore
from tests.store.builders import changes, event, query, stored

CATEGORIES = st.sampled_from([None, "Music", "music", "MUSIC ", "Tech", "Straße", "STRASSE"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), CATEGORIES),
        st.tuples(st.just("recategorise"), CATEGORIES),
        st.tuples(st.just("delete"), st.none()),
        st.tuples(st.just("insert_missing"), CATEGORIES),
        st.tuples(st.just("delete_all"), st.none()),
        st.tuples(st.just("load_new"), CATEGORIES),
    ),
    max_size=25,
)


def counted(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT scope, events FROM event_counts"))


def recounted(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        rows = conn.execute(
            "SELECT 'category:' || category_key, count(*) FROM events"
            " WHERE category_key IS NOT NULL GROUP BY category_key"
        )
        return {"*": total, **dict(rows)} if total else dict(rows)


async def play(path: Path, operations: list[tuple[str, str | None]]) -> None:
    store = await SqliteEventStore.open(str(path), 5.0)
    try:
        ids: list[str] = []
        for n, (name, category) in enumerate(operations):
            if name == "create":
                ids.append((await store.create(event(f"e{n}", category=category))).event.id)
            elif name == "recategorise" and ids:
                await store.update(ids[n % len(ids)], changes(category=category))
            elif name == "delete" and ids:
                await store.delete(ids.pop(n % len(ids)))
            elif name == "insert_missing":
                new = [stored(f"{n:04x}{k:020x}", event("bulk", category=category)) for k in (1, 2)]
                await store.insert_missing(new)
                ids += [e.id for e in new]
            elif name == "delete_all":
                await store.delete_all()
                ids.clear()
            elif name == "load_new":
                new = [stored(f"{n:04x}{k:020x}", event("load", category=category)) for k in (3, 4)]
                if await store.load_new([[fields_of(e) for e in new]]) is not None:
                    ids += [e.id for e in new]
            page = await store.list(query(category=category) if category else query())
            everything = await store.list(
                query(limit=100, category=category) if category else query(limit=100)
            )
            assert page.total == len(everything.items)
    finally:
        await store.close()


@settings(max_examples=40, deadline=None)
@given(OPERATIONS)
def test_the_kept_counts_equal_a_count_of_the_rows(
    operations: list[tuple[str, str | None]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "counts.db"
        asyncio.run(play(path, operations))
        kept = {scope: n for scope, n in counted(path).items() if n or scope == "*"}
        assert kept.get("*", 0) == recounted(path).get("*", 0)
        assert {s: n for s, n in kept.items() if s != "*"} == {
            s: n for s, n in recounted(path).items() if s != "*"
        }
