"""EventStore contract, part 2: list() - totals, paging, sorting and every filter."""

from __future__ import annotations

import pytest

from eventapi.events.schemas import EventCreate, EventRead, SortKey
from eventapi.events.store import EventStore
from tests.store.builders import create_all, event, everything, ids, query, stored, titles

SORT_KEYS: list[SortKey] = ["date", "-date", "title", "-title"]


# --- total, limit and offset --------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "offset", "size"),
    [(1, 0, 1), (3, 2, 3), (5, 5, 2), (100, 0, 7), (5, 7, 0), (5, 50, 0)],
)
async def test_total_does_not_depend_on_limit_or_offset(
    store: EventStore, limit: int, offset: int, size: int
) -> None:
    await create_all(store, *(event(f"e{i}", f"2025-01-0{i + 1}T00:00:00") for i in range(7)))

    page = await store.list(query(limit=limit, offset=offset))

    assert page.total == 7
    assert len(page.items) == size


async def test_total_counts_matches_not_the_page(store: EventStore) -> None:
    await create_all(
        store,
        *(event(f"m{i}", category="Music") for i in range(4)),
        *(event(f"s{i}", category="Sports") for i in range(3)),
    )

    page = await store.list(query(category="music", limit=2, offset=1))

    assert page.total == 4
    assert len(page.items) == 2
    assert all(e.category == "Music" for e in page.items)


async def test_pages_do_not_overlap_and_cover_everything(store: EventStore) -> None:
    await create_all(store, *(event(f"e{i:02}", f"2025-02-{i + 1:02}T09:00:00") for i in range(11)))
    whole = ids(await everything(store))

    paged: list[str] = []
    for offset in range(0, 11, 4):
        paged += ids(await store.list(query(limit=4, offset=offset)))

    assert paged == whole
    assert len(set(paged)) == 11


@pytest.mark.parametrize("sort", SORT_KEYS)
async def test_paging_is_stable_when_many_events_share_a_date_and_title(
    store: EventStore, sort: SortKey
) -> None:
    await create_all(
        store,
        *(event("Same", "2025-03-01T12:00:00") for _ in range(9)),
        # the same instant, aware: a tie on the timeline too
        *(event("Same", "2025-03-01T14:00:00+02:00") for _ in range(3)),
        event("Other", "2025-03-02T12:00:00"),
    )
    whole = await everything(store, sort=sort)

    paged: list[str] = []
    for offset in range(0, 13, 5):
        paged += ids(await store.list(query(limit=5, offset=offset, sort=sort)))

    assert paged == ids(whole)
    assert len(set(paged)) == 13
    same = [e.id for e in whole.items if e.title == "Same"]
    assert same == sorted(same, reverse=sort.startswith("-"))


# --- sorting ------------------------------------------------------------------------------

# Tied ids are chosen so that insertion order is neither ascending nor descending by id.
TIED_IDS = ["000000000000000000000002", "000000000000000000000003", "000000000000000000000001"]


@pytest.mark.parametrize("sort", SORT_KEYS)
async def test_ties_are_broken_by_id_not_by_insertion_order(
    store: EventStore, sort: SortKey
) -> None:
    await store.insert_missing([stored(i, event("Tie", "2025-01-01T00:00:00")) for i in TIED_IDS])

    got = ids(await everything(store, sort=sort))

    assert got == sorted(TIED_IDS, reverse=sort.startswith("-"))


def _sort_catalogue() -> list[EventCreate]:
    return [
        event("b", "2025-01-01T10:00:00"),
        event("B", "2025-01-01T11:30:00+02:00"),  # 09:30Z: before the naive 10:00
        event("a", "2025-01-01T10:00:00Z"),  # tie on the timeline with the naive 10:00
        event("é", "2024-12-31T23:59:59.999"),
        event("a", "2025-01-02T00:00:00"),
        event("A", "2025-01-01T10:00:00.001"),
    ]


def _by_id(events: list[EventRead], *names: str, reverse: bool = False) -> list[str]:
    """Ids of the events with these titles, in id order within each title."""
    out: list[str] = []
    for name in names:
        out += sorted((e.id for e in events if e.title == name), reverse=reverse)
    return out


async def test_sort_by_date_puts_naive_dates_on_the_utc_timeline(store: EventStore) -> None:
    created = await create_all(store, *_sort_catalogue())
    b, big_b, a1, e_acute, a2, big_a = created
    tie = sorted([b.id, a1.id])

    assert ids(await everything(store, sort="date")) == [
        e_acute.id,
        big_b.id,
        *tie,
        big_a.id,
        a2.id,
    ]
    assert ids(await everything(store, sort="-date")) == [
        a2.id,
        big_a.id,
        *reversed(tie),
        big_b.id,
        e_acute.id,
    ]
    assert ids(await everything(store)) == ids(await everything(store, sort="date"))


async def test_sort_by_title_is_by_code_point_with_ties_by_id(store: EventStore) -> None:
    created = await create_all(store, *_sort_catalogue())
    order = ("A", "B", "a", "b", "é")

    assert ids(await everything(store, sort="title")) == _by_id(created, *order)
    assert ids(await everything(store, sort="-title")) == _by_id(
        created, *reversed(order), reverse=True
    )


# --- category -----------------------------------------------------------------------------

CATEGORIES = ["Music", "MUSIC", "music festival", "Musical", "Straße", "Émile", ".*", None]


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("music", ["Music", "MUSIC"]),
        ("mUsIc", ["Music", "MUSIC"]),
        ("Music Festival", ["music festival"]),
        ("musi", []),
        ("STRASSE", ["Straße"]),  # "Straße".casefold() == "strasse"
        ("strasse", ["Straße"]),
        ("STRAßE", ["Straße"]),
        ("émile", ["Émile"]),
        ("ÉMILE", ["Émile"]),
        ("emile", []),  # case-insensitive, not accent-insensitive
        (".*", [".*"]),
        ('{"$gt": ""}', []),
        ("^M", []),
    ],
)
async def test_category_is_a_case_insensitive_exact_match(
    store: EventStore, asked: str, expected: list[str]
) -> None:
    await create_all(store, *(event(f"e{i}", category=c) for i, c in enumerate(CATEGORIES)))

    page = await everything(store, category=asked)

    assert sorted(e.category or "" for e in page.items) == sorted(expected)


# --- q ------------------------------------------------------------------------------------


async def test_q_searches_title_description_and_location_ignoring_case(store: EventStore) -> None:
    in_title, in_description, in_location, _elsewhere, _nowhere = await create_all(
        store,
        event("Rock Night"),
        event("Evening", description="loud ROCK and roll"),
        event("Gig", location="Rockefeller Center"),
        event("Quiet", category="rock", organizer="Rock Corp"),
        event("Jazz", description="smooth", location="Club"),
    )
    expected = sorted([in_title.id, in_description.id, in_location.id])

    for asked in ("rock", "ROCK", "rOcK", "ock"):
        assert sorted(ids(await everything(store, q=asked))) == expected, asked
    assert ids(await everything(store, q="rock corp")) == []
    assert ids(await everything(store, q="k and r")) == [in_description.id]


TEXTS = [
    "Intro to C++",
    "Regex .* explained",
    "Call (555) 0100",
    "Lists like [a] and [b]",
    "Mongo $gt operator",
    "a|b or not",
    "plain a",
    "100% sure",
    "snake_case",
    "back\\slash",
    "Why? Because",
]


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (".*", ["Regex .* explained"]),
        ("C++", ["Intro to C++"]),
        ("(", ["Call (555) 0100"]),
        ("[a]", ["Lists like [a] and [b]"]),
        ("$gt", ["Mongo $gt operator"]),
        ("a|b", ["a|b or not"]),
        ("%", ["100% sure"]),
        ("_", ["snake_case"]),
        ("\\", ["back\\slash"]),
        ("?", ["Why? Because"]),
        ("^plain", []),
        ("e$", []),
        (".", ["Regex .* explained"]),
    ],
)
async def test_q_matches_regex_and_like_metacharacters_literally(
    store: EventStore, asked: str, expected: list[str]
) -> None:
    # Each text once as a title, once as a description, once as a location.
    await create_all(store, *(event(t) for t in TEXTS))
    await create_all(store, *(event("x", description=t) for t in TEXTS))
    await create_all(store, *(event("x", location=t) for t in TEXTS))

    page = await everything(store, q=asked)

    found = sorted(
        e.title if e.title != "x" else e.description or e.location or "" for e in page.items
    )
    assert found == sorted(expected * 3)


async def test_q_ignores_case_of_accented_letters(store: EventStore) -> None:
    hall = (await store.create(event("Talk", location="Émile Zola Hall"))).event
    await store.create(event("Emile without accent"))

    for asked in ("émile", "ÉMILE", "ÉmIlE"):
        assert ids(await everything(store, q=asked)) == [hall.id], asked


async def test_q_ignores_case_the_way_category_does_casefold(store: EventStore) -> None:
    """'ignoring case' means casefold, as for category: STRASSE finds Straße."""
    fest = (await store.create(event("Straßenfest"))).event
    shout = (await store.create(event("STRASSENFEST"))).event

    assert sorted(ids(await everything(store, q="strasse"))) == sorted([fest.id, shout.id])
    assert sorted(ids(await everything(store, q="STRASSE"))) == sorted([fest.id, shout.id])
    assert sorted(ids(await everything(store, q="straße"))) == sorted([fest.id, shout.id])


# --- date range ---------------------------------------------------------------------------


async def test_date_range_includes_both_ends(store: EventStore) -> None:
    nine, ten, eleven, noon = await create_all(
        store, *(event(f"{h}h", f"2025-04-01T{h:02}:00:00") for h in (9, 10, 11, 12))
    )
    day = "2025-04-01T"

    assert ids(await everything(store, date_from=f"{day}10:00:00", date_to=f"{day}11:00:00")) == [
        ten.id,
        eleven.id,
    ]
    assert ids(await everything(store, date_from=f"{day}11:00:00")) == [eleven.id, noon.id]
    assert ids(await everything(store, date_to=f"{day}10:00:00")) == [nine.id, ten.id]
    assert ids(await everything(store, date_from=f"{day}10:00:00", date_to=f"{day}10:00:00")) == [
        ten.id
    ]
    assert ids(await everything(store, date_from=f"{day}10:00:00.001")) == [eleven.id, noon.id]
    assert ids(await everything(store, date_to=f"{day}09:59:59.999")) == [nine.id]


async def test_date_range_works_to_the_millisecond(store: EventStore) -> None:
    late = (await store.create(event("late", "2025-04-01T10:00:00.001"))).event
    await store.create(event("early", "2025-04-01T10:00:00"))

    assert ids(await everything(store, date_from="2025-04-01T10:00:00.001")) == [late.id]
    assert titles(await everything(store, date_to="2025-04-01T10:00:00.000999")) == ["early"]


async def test_naive_and_aware_bounds_compare_on_the_utc_timeline(store: EventStore) -> None:
    naive_ten, aware_eight, aware_noon = await create_all(
        store,
        event("naive 10:00 (as UTC)", "2025-01-01T10:00:00"),
        event("aware 08:00Z", "2025-01-01T10:00:00+02:00"),
        event("aware 12:00Z", "2025-01-01T12:00:00Z"),
    )

    # aware lower bound at 10:00Z, naive upper bound at 12:00 (as UTC)
    page = await everything(
        store, date_from="2025-01-01T12:00:00+02:00", date_to="2025-01-01T12:00:00"
    )
    assert ids(page) == [naive_ten.id, aware_noon.id]
    # naive upper bound just before 10:00 (as UTC)
    assert ids(await everything(store, date_to="2025-01-01T09:59:59.999")) == [aware_eight.id]
    # both bounds aware, on the instant of the aware 08:00Z event, in other offsets
    page = await everything(
        store, date_from="2025-01-01T08:00:00Z", date_to="2025-01-01T03:00:00-05:00"
    )
    assert ids(page) == [aware_eight.id]
    # an aware lower and a naive upper bound on one instant select what is exactly there
    assert ids(
        await everything(store, date_from="2025-01-01T10:00:00Z", date_to="2025-01-01T10:00:00")
    ) == [naive_ten.id]


# --- combining filters --------------------------------------------------------------------


async def test_filters_combine_with_and(store: EventStore) -> None:
    hit, *_ = await create_all(
        store,
        event("Rock Festival", "2025-07-10T18:00:00", category="Music"),
        event("Rock Festival", "2025-08-10T18:00:00", category="Music"),  # date out
        event("Rock Festival", "2025-07-11T18:00:00", category="Sports"),  # category out
        event("Jazz Festival", "2025-07-12T18:00:00", category="Music"),  # q out
    )
    filters: dict[str, object] = {
        "category": "MUSIC",
        "q": "rock",
        "date_from": "2025-07-01T00:00:00",
        "date_to": "2025-07-31T23:59:59Z",
    }
    for name, value in filters.items():  # no filter on its own narrows it down to the hit
        assert (await everything(store, **{name: value})).total > 1, name

    assert ids(await everything(store, **filters)) == [hit.id]
    paged = await store.list(query(limit=1, offset=1, **filters))
    assert (paged.total, paged.items) == (1, [])
