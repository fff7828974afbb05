"""One contract, proven by difference (issue 18): the app with the read fast path
(http/fastpath.py) and without it answer the same requests with the same bytes.

Two apps, each over its own copy of one SQLite file (so the same events under the same
ids) and its own in-process cache, are sent the same generated requests in the same
order: reads and writes, HEAD included, ids well and badly formed and in either case,
list query strings valid and not (each sent more than once, so the fast path learns the
valid ones), bodies on GETs (small, and over the body limit), If-None-Match and If-Match
as one comma-listed line or as several lines, with tags seen so far, weak ones, unknown
ones and ``*``, and an API key right, wrong or missing. Each pair of answers must be
byte-identical in status, headers (but the request id) and body. The two apps see the
same sequence, so their caches and stores stay in step as long as their answers do.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventapi.events import dates
from eventapi.follow import cursor
from eventapi.settings import Settings
from tests.support.api import EVENTS
from tests.support.app import run_app
from tests.support.settings import app_settings

KEY = "contract-key-0123456789"
SEEDED = 4
MALFORMED_IDS = ["abc", "0123456789abcdef0123456", "0123456789abcdef012345678", "g" * 24]
UNKNOWN_ID = "0123456789abcdef01234567"
QUERIES = [
    "",
    "limit=1",
    "limit=2&offset=1",
    "sort=title",
    "sort=-date&limit=3",
    "q=event",
    "q=ev",
    "category=Music",
    "category=music&sort=title",
    "date_from=2025-06-02T00:00:00",
    "category=Music&category=Art&status=scheduled",
    "organizer=ACME&sort=-updated",
    "expand=true&date_from=2025-06-01T00:00:00Z&date_to=2025-07-01T00:00:00Z",
    # not valid: the route answers 422, and the fast path never learns them
    "expand=true",
    "status=gone",
    "limit=0",
    "limit=many",
    "sort=bogus",
    "offset=-1",
    "date_from=yesterday",
]
PER_REQUEST = frozenset({"x-request-id"})
# Each app's change watch reads the log on its own timer, so the two may answer with
# different cursors, both right (any head read before the read is: tests/follow). Compared
# as present or absent, and as cursors the API hands out.
BY_TIMING = frozenset({"x-changes-cursor"})
FROZEN = datetime(2026, 1, 1, tzinfo=UTC)
BODY_LIMIT = 2048


def contract_settings(db: Path) -> Settings:
    return app_settings(
        db,
        api_keys=KEY,
        max_body_bytes=BODY_LIMIT,
        # No relay pass during the run: each cache changes only by the requests it is sent.
        cache_relay_interval=60,
    )


@dataclass
class Pair:
    fast: httpx.AsyncClient
    routed: httpx.AsyncClient
    ids: list[str]
    etags: list[str]


@dataclass
class Seeded:
    """A SQLite file holding SEEDED events, and their ids; each pair of apps gets copies."""

    db: Path
    ids: list[str]
    pairs: int = 0


@pytest.fixture(autouse=True)
def one_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both apps stamp writes from one fixed clock (dates.after still moves each event's
    updated_at on), so their answers can be byte-identical."""
    monkeypatch.setattr(dates, "now", lambda: FROZEN)


@pytest.fixture
async def seeded(tmp_path: Path) -> Seeded:
    db = tmp_path / "seeded.db"
    async with run_app(contract_settings(db)) as running:
        http = running.http
        ids = []
        for n in range(SEEDED):
            body = {
                "title": f"Event {n}",
                "date": f"2025-06-0{n + 1}T12:00:00",
                "location": "Hall",
                "category": ["Music", "Talks"][n % 2],
            }
            created = await http.post(EVENTS, json=body, headers={"X-API-Key": KEY})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
    return Seeded(db, ids)


@asynccontextmanager
async def new_pair(seeded: Seeded) -> AsyncIterator[Pair]:
    """Two apps, fast path on and off, each over its own copy of the seeded file."""
    seeded.pairs += 1
    folder = seeded.db.parent / f"pair-{seeded.pairs}"
    folder.mkdir()
    async with AsyncExitStack() as stack:
        clients = []
        for fast_path in (True, False):
            db = folder / f"fast-path-{fast_path}.db"
            shutil.copyfile(seeded.db, db)
            running = run_app(contract_settings(db), fast_path=fast_path)
            clients.append((await stack.enter_async_context(running)).http)
        yield Pair(clients[0], clients[1], seeded.ids, [])


@pytest.fixture
async def pair(seeded: Seeded) -> AsyncIterator[Pair]:
    async with new_pair(seeded) as made:
        yield made


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes | None


def tag_lines(data: st.DataObject, name: str, etags: list[str]) -> list[tuple[str, str]]:
    """Zero or more tags: seen ones (strong or weak), unknown ones, or ``*``; sent as one
    comma-listed line or one line each."""
    known = ['"0000"', "*", *etags]
    tags = data.draw(st.lists(st.sampled_from(known), max_size=3), label=name)
    tags = [f"W/{t}" if t != "*" and data.draw(st.booleans()) else t for t in tags]
    if not tags:
        return []
    if data.draw(st.booleans(), label=f"{name} on one line"):
        return [(name, ", ".join(tags))]
    return [(name, t) for t in tags]


def draw_call(data: st.DataObject, pair: Pair) -> Call:
    method = data.draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "PUT", "PATCH", "DELETE"]))
    target = data.draw(st.sampled_from(["item", "item", "list", "malformed", "unknown"]))
    if target == "list" and method in ("GET", "HEAD"):
        query = data.draw(st.sampled_from(QUERIES))
        path = f"{EVENTS}?{query}" if query else EVENTS
    else:
        event_id = {
            "item": lambda: data.draw(st.sampled_from(pair.ids)),
            "list": lambda: data.draw(st.sampled_from(pair.ids)),
            "malformed": lambda: data.draw(st.sampled_from(MALFORMED_IDS)),
            "unknown": lambda: UNKNOWN_ID,
        }[target]()
        if data.draw(st.booleans(), label="upper-case id"):
            event_id = event_id.upper()
        path = f"{EVENTS}/{event_id}"
    headers = tag_lines(data, "If-None-Match", pair.etags)
    if method in ("PUT", "PATCH", "DELETE"):
        headers += tag_lines(data, "If-Match", pair.etags)
    key = data.draw(st.sampled_from([KEY, "wrong-key", None]), label="API key")
    if key is not None:
        headers.append(("X-API-Key", key))
    body: bytes | None = None
    if method in ("PUT", "PATCH"):
        title = data.draw(st.sampled_from(["Renamed", "", "x" * 300]))
        body = b'{"title": "%s", "date": "2025-07-01T10:00:00"}' % title.encode()
        headers.append(("Content-Type", "application/json"))
    elif method == "GET" and data.draw(st.booleans(), label="GET with a body"):
        body = b"x" * data.draw(st.sampled_from([10, BODY_LIMIT + 1]))
    return Call(method, path, headers, body)


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = []
    for name, value in response.headers.multi_items():
        if name in BY_TIMING:
            cursor.decode(value)
            headers.append((name, "a change cursor"))
        elif name not in PER_REQUEST:
            headers.append((name, value))
    return response.status_code, sorted(headers), response.content


async def send(http: httpx.AsyncClient, call: Call) -> httpx.Response:
    return await http.request(call.method, call.path, headers=call.headers, content=call.body)


@settings(
    max_examples=40,
    deadline=None,
    # The seeded file is made once; each example gets its own pair of apps over copies.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_the_fast_path_and_the_routes_answer_every_request_alike(
    seeded: Seeded, data: st.DataObject
) -> None:
    async with new_pair(seeded) as pair:
        for _ in range(data.draw(st.integers(1, 10), label="requests")):
            call = draw_call(data, pair)
            # Twice: the first sending of a valid query string teaches it to the fast path.
            for _ in range(2 if call.method in ("GET", "HEAD") else 1):
                fast, routed = await send(pair.fast, call), await send(pair.routed, call)
                assert comparable(fast) == comparable(routed), call
                if (etag := fast.headers.get("etag")) and etag not in pair.etags:
                    pair.etags.append(etag)


async def test_a_missing_event_says_where_its_answer_came_from(pair: Pair) -> None:
    """Every read answer carries X-Cache, a 404 included (the first from the database,
    the next from the cache)."""
    for http in (pair.fast, pair.routed):
        first = await http.get(f"{EVENTS}/{UNKNOWN_ID}")
        again = await http.get(f"{EVENTS}/{UNKNOWN_ID}")
        assert (first.status_code, first.headers["x-cache"]) == (404, "MISS")
        assert (again.status_code, again.headers["x-cache"]) == (404, "HIT")


@pytest.mark.parametrize("matching_first", [True, False])
async def test_if_none_match_lines_are_combined(pair: Pair, matching_first: bool) -> None:
    """RFC 9110: several If-None-Match lines are one list; a match in any of them is 304."""
    url = f"{EVENTS}/{pair.ids[0]}"
    for http in (pair.fast, pair.routed):
        etag = (await http.get(url)).headers["etag"]
        lines = [("If-None-Match", etag), ("If-None-Match", '"other"')]
        if not matching_first:
            lines.reverse()
        assert (await http.get(url, headers=lines)).status_code == 304
