"""The SQL of a list page (EventQuery) on the SQLite store, and of its total.

Every statement names the events table ``e``. Windows: an event is in [date_from, date_to]
when it overlaps it: it starts by date_to and ends (``until_utc``: its end, or its last
occurrence's) from date_from on, and, if it recurs, one of its occurrences does the same.
"Ends from date_from on" is not a range of the date index, so the statement also bounds the
start from below by date_from minus the longest span any event has had (event_longest): a
window is then one range of the date index, as before events had ends, as long as no
event lasts long.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eventapi.events import dates
from eventapi.events.keyset import Position
from eventapi.events.schemas import EventQuery
from eventapi.storage.sqlite_rows import COLUMNS, utc_text

# The shortest search string the trigram index can find; a shorter one is looked for in
# every row (q= of 1 or 2 characters).
INDEXED_SEARCH = 3
_SCAN_CASEFOLDED = (
    "SELECT id FROM events_search_content WHERE instr(c0, ?) OR instr(c1, ?) OR instr(c2, ?)"
)
_ORDER = {
    "date": "e.date_utc ASC, e.id ASC",
    "-date": "e.date_utc DESC, e.id DESC",
    "title": "e.title ASC, e.id ASC",
    "-title": "e.title DESC, e.id DESC",
    "updated": "e.updated_at ASC, e.id ASC",
    "-updated": "e.updated_at DESC, e.id DESC",
}
# An expanded page's order: the sort's key, then each occurrence's start.
_EXPANDED_ORDER = {
    "date": "o_start ASC, id ASC",
    "-date": "o_start DESC, id DESC",
    "title": "title ASC, id ASC, o_start ASC",
    "-title": "title DESC, id DESC, o_start DESC",
    "updated": "updated_at ASC, id ASC, o_start ASC",
    "-updated": "updated_at DESC, id DESC, o_start DESC",
}
# The column of each sort's value (its ties broken by e.id).
_KEYS = {"date": "e.date_utc", "title": "e.title", "updated": "e.updated_at"}
_SELECTED = ", ".join(f"e.{name}" for name in COLUMNS)
_OCCURRENCES = "FROM occurrences o JOIN events e ON e.id = o.event_id"


def searched(query: EventQuery) -> str | None:
    """The FTS5 query of ``query.q`` when the trigram index can answer it: one phrase of
    the needle's trigrams, in consecutive positions of one column, which is exactly "a
    substring of the casefolded column", which is what q means."""
    if query.q is None or len(folded := query.q.casefold()) < INDEXED_SEARCH:
        return None
    return '"' + folded.replace('"', '""') + '"'


def recurring(conn: sqlite3.Connection) -> bool:
    """Whether any event recurs: each has an occurrence row (timing.check refuses a series
    whose exdates skip every occurrence). Without one, a window is one range of the date
    index with no other condition, which its count reads from the index alone."""
    return conn.execute("SELECT 1 FROM occurrences LIMIT 1").fetchone() is not None


def longest(conn: sqlite3.Connection) -> timedelta:
    """The longest span any event has had (event_longest), read in the page's snapshot."""
    row = conn.execute("SELECT ms FROM event_longest").fetchone()
    return timedelta(milliseconds=0 if row is None else int(row[0]))


def _filters(query: EventQuery, in_order: bool = False) -> tuple[list[str], list[Any]]:
    """Every condition but the window. ``in_order``: the matches of q are a filter on rows
    read in the page's order, not where the reading starts (see read_in_order)."""
    where: list[str] = []
    params: list[Any] = []
    if query.category:
        keys = sorted({c.casefold() for c in query.category})
        where.append(f"e.category_key IN ({', '.join('?' * len(keys))})")
        params.extend(keys)
    if query.organizer is not None:
        where.append("e.organizer_key = ?")
        params.append(query.organizer.casefold())
    if query.status:
        statuses = sorted(set(query.status))
        where.append(f"e.status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    if (phrase := searched(query)) is not None:
        rowid = "+e.rowid" if in_order else "e.rowid"  # unary +: not an index to start from
        where.append(f"{rowid} IN (SELECT rowid FROM events_search WHERE events_search MATCH ?)")
        params.append(phrase)
    elif query.q is not None:
        # Too short for the trigram index: every event's casefolded text is read, from the
        # search index's own copy of it (FTS5's content table: id, c0, c1, c2 for title,
        # description, location), by SQLite alone. At 1M events 0.6 s, with the GIL free
        # all along; a Python function called on each row took 2 s holding it.
        where.append(f"e.rowid IN ({_SCAN_CASEFOLDED})")
        params.extend([query.q.casefold()] * 3)
    return where, params


def _starts(
    query: EventQuery, span: timedelta, start: str, stop: str
) -> tuple[list[str], list[Any]]:
    """Conditions that what starts at column ``start`` and ends at ``stop`` (NULL: at its
    start) overlaps the window."""
    where: list[str] = []
    params: list[Any] = []
    if query.date_from is not None:
        try:
            low = dates.instant(query.date_from) - span
        except OverflowError:
            low = datetime.min.replace(tzinfo=UTC)
        where.append(f"{start} >= ?")
        params.append(utc_text(low))
        if span:  # else starting from date_from on is the whole condition
            where.append(f"({start} >= ? OR {stop} >= ?)")
            params.extend([utc_text(query.date_from)] * 2)
    if query.date_to is not None:
        where.append(f"{start} <= ?")
        params.append(utc_text(query.date_to))
    return where, params


def _window(query: EventQuery, span: timedelta, recurring: bool) -> tuple[list[str], list[Any]]:
    """Conditions that an event overlaps the window (one of its occurrences, if it recurs;
    ``recurring``: whether any event does)."""
    if not query.windowed():
        return [], []
    where, params = _starts(query, span, "e.date_utc", "e.until_utc")
    if not recurring:
        return where, params
    inner, inner_params = _starts(query, span, "o.start_utc", "o.stop_utc")
    where.append(
        "(e.recurrence IS NULL OR EXISTS (SELECT 1 FROM occurrences o "
        f"WHERE o.event_id = e.id AND {' AND '.join(inner)}))"
    )
    return where, [*params, *inner_params]


def _clause(*parts: tuple[list[str], list[Any]]) -> tuple[str, list[Any]]:
    where = [c for conditions, _ in parts for c in conditions]
    params = [p for _, values in parts for p in values]
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


def page_statement(
    query: EventQuery,
    span: timedelta = timedelta(0),
    in_order: bool = False,
    recurring: bool = True,
) -> tuple[str, list[Any]]:
    """The SELECT of one list page, and its parameters (tests read its query plan)."""
    if query.expand:
        return expanded_statement(query, span)
    clause, params = _clause(_filters(query, in_order), _window(query, span, recurring))
    sql = (
        f"SELECT {_SELECTED} FROM events e {clause} ORDER BY {_ORDER[query.sort]} LIMIT ? OFFSET ?"
    )
    return sql, [*params, query.limit, query.offset]


def _single(
    query: EventQuery, span: timedelta, after: Position | None = None
) -> tuple[str, list[Any]]:
    """The WHERE of the events that do not recur, in an expanded page (after ``after``)."""
    return _clause(
        _filters(query),
        (["e.recurrence IS NULL"], []),
        _starts(query, span, "e.date_utc", "e.until_utc"),
        _expanded_after(query, after, "e.date_utc"),
    )


def _recurring(
    query: EventQuery, span: timedelta, after: Position | None = None
) -> tuple[str, list[Any]]:
    """The WHERE of the occurrences of recurring events, in an expanded page (after
    ``after``)."""
    return _clause(
        _filters(query),
        _starts(query, span, "o.start_utc", "o.stop_utc"),
        _expanded_after(query, after, "o.start_utc"),
    )


def expanded_statement(
    query: EventQuery, span: timedelta, after: Position | None = None
) -> tuple[str, list[Any]]:
    """One page of occurrences: each event that does not recur as itself, and each
    occurrence of one that does, with its start and stop as ``o_start``/``o_stop``; after
    the position ``after`` (a cursor's), or from the query's offset."""
    single, single_params = _single(query, span, after)
    recurring, recurring_params = _recurring(query, span, after)
    sql = (
        f"SELECT {_SELECTED}, e.date_utc AS o_start, 0 AS o_series FROM events e {single} "
        f"UNION ALL SELECT {_SELECTED}, o.start_utc AS o_start, 1 AS o_series "
        f"{_OCCURRENCES} {recurring} "
        f"ORDER BY {_EXPANDED_ORDER[query.sort]} LIMIT ? OFFSET ?"
    )
    paging = [query.limit, query.offset] if after is None else [query.limit + 1, 0]
    return sql, [*single_params, *recurring_params, *paging]


def _beyond(
    columns: Sequence[str], values: Sequence[str | None], descending: bool, nullable: bool
) -> list[tuple[str, list[Any]]]:
    """The rows after ``values`` in the order of ``columns`` (every one ascending, or
    every one descending), as conditions to read one after the other, each one range of an
    index that starts with the columns. Only the first column may be NULL (``nullable``:
    updated_at, of events written before it was kept), and SQLite sorts NULL first: so
    after a NULL come the other NULLs with a greater rest, then every value (ascending), or
    the NULLs with a smaller rest alone (descending); after a value, a NULL comes only when
    descending, after every value."""
    op = "<" if descending else ">"

    def row(names: Sequence[str], given: Sequence[str | None]) -> tuple[str, list[Any]]:
        marks = ", ".join("?" * len(names))
        return f"({', '.join(names)}) {op} ({marks})", list(given)

    first = columns[0]
    if values[0] is None:
        rest, params = row(columns[1:], values[1:])
        same = (f"{first} IS NULL AND {rest}", params)
        return [same] if descending else [same, (f"{first} IS NOT NULL", [])]
    ranges = [row(columns, values)]
    if descending and nullable:
        ranges.append((f"{first} IS NULL", []))
    return ranges


def _expanded_after(
    query: EventQuery, after: Position | None, start: str
) -> tuple[list[str], list[Any]]:
    """The condition that a row of an expanded page (``start``: its start's column) comes
    after ``after``: by (start, id) for the date sort, else (sort value, id, start)."""
    if after is None:
        return [], []
    sort = query.sort.removeprefix("-")
    if sort == "date":
        columns, values = [start, "e.id"], [after.key, after.id]
    else:
        columns, values = [_KEYS[sort], "e.id", start], [after.key, after.id, after.start]
    ranges = _beyond(columns, values, query.sort.startswith("-"), sort == "updated")
    either = " OR ".join(f"({condition})" for condition, _ in ranges)
    return [f"({either})"], [p for _, params in ranges for p in params]


def keyset_statements(
    query: EventQuery,
    after: Position,
    span: timedelta = timedelta(0),
    in_order: bool = False,
    recurring: bool = True,
) -> list[tuple[str, list[Any]]]:
    """The SELECTs of a page after the position ``after`` (a cursor's), to run in turn
    until one more row than the page holds is read: each a seek into the sort's index, so
    a page deep in the list costs what the first one costs (tests/store/test_query_plans.py).
    The keyset condition comes first: of two bounds on the sort's column (a window's and
    the keyset's), SQLite seeks by the first."""
    sort = query.sort.removeprefix("-")
    ranges = _beyond(
        [_KEYS[sort], "e.id"], [after.key, after.id], query.sort.startswith("-"), sort == "updated"
    )
    statements = []
    for condition, values in ranges:
        clause, params = _clause(
            ([condition], values), _filters(query, in_order), _window(query, span, recurring)
        )
        sql = f"SELECT {_SELECTED} FROM events e {clause} ORDER BY {_ORDER[query.sort]} LIMIT ?"
        statements.append((sql, [*params, query.limit + 1]))
    return statements


def page_rows(
    conn: sqlite3.Connection,
    query: EventQuery,
    after: Position | None,
    span: timedelta,
    in_order: bool,
    recurring: bool,
) -> tuple[list[sqlite3.Row], bool | None]:
    """The rows of a page, and whether a row follows them (None: not read, as on an
    offset page, where the total says)."""
    if after is None:
        return conn.execute(*page_statement(query, span, in_order, recurring)).fetchall(), None
    if query.expand:
        statements = [expanded_statement(query, span, after)]
    else:
        statements = keyset_statements(query, after, span, in_order, recurring)
    rows: list[sqlite3.Row] = []
    for statement in statements:
        rows += conn.execute(*statement).fetchall()
        if len(rows) > query.limit:
            break
    return rows[: query.limit], len(rows) > query.limit


def position(query: EventQuery, row: sqlite3.Row) -> Position:
    """Where the row ``row`` of a page of ``query`` sits in its order."""
    sort = query.sort.removeprefix("-")
    key = _KEYS[sort].removeprefix("e.")
    if query.expand:
        start: str = row["o_start"]
        return Position(start if sort == "date" else row[key], row["id"], start)
    return Position(row[key], row["id"])


def counted_scope(query: EventQuery) -> str | None:
    """The event_counts row holding the number of matches of ``query``, if one does."""
    if query.q is not None or query.windowed() or query.organizer or query.status:
        return None
    if len(query.category) > 1:
        return None
    return f"category:{query.category[0].casefold()}" if query.category else "*"


def kept_count(conn: sqlite3.Connection, scope: str) -> int:
    row = conn.execute("SELECT events FROM event_counts WHERE scope = ?", (scope,)).fetchone()
    return 0 if row is None else int(row[0])


def total(
    conn: sqlite3.Connection, query: EventQuery, span: timedelta, recurring: bool = True
) -> int:
    """How many events (occurrences, expanded) match ``query``: kept (event_counts), or
    counted in the search index alone for a text search with no other filter (each row of
    it is an event), or counted."""
    if query.expand:
        single, single_params = _single(query, span)
        series, series_params = _recurring(query, span)
        sql = (
            f"SELECT (SELECT count(*) FROM events e {single}) + "
            f"(SELECT count(*) {_OCCURRENCES} {series})"
        )
        return int(conn.execute(sql, [*single_params, *series_params]).fetchone()[0])
    if (scope := counted_scope(query)) is not None:
        return kept_count(conn, scope)
    phrase = searched(query)
    alone = not (query.category or query.organizer or query.status or query.windowed())
    if phrase is not None and alone:
        sql = "SELECT count(*) FROM events_search WHERE events_search MATCH ?"
        return int(conn.execute(sql, (phrase,)).fetchone()[0])
    clause, params = _clause(_filters(query), _window(query, span, recurring))
    return int(conn.execute(f"SELECT count(*) FROM events e {clause}", params).fetchone()[0])


def read_in_order(query: EventQuery, matches: int, events: int) -> bool:
    """Whether a page of a text search reads the events in the page's order (an index of
    the sort), keeping those the search matched, rather than reading every match and
    sorting them. The first reads about (offset + limit) * events / matches rows, the
    second ``matches``: at 1M events, q=festival (28,700 matches) takes 41 ms the first way
    and 70 ms the second, and a word in 5 events 0.1 ms against a scan of the whole index."""
    return (query.offset + query.limit) * events < matches * matches
