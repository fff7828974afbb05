"""X-Cache, ETag and If-None-Match, negative caching, caching switched off, and list keys."""

from __future__ import annotations

import httpx
import pytest

from eventapi.settings import Settings
from tests.cache.helpers import Launch
from tests.support.api import EVENTS, MISSING_ID, create, item
from tests.support.app import RunningApp
from tests.support.gated_store import GatedStore


async def get(http: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    response = await http.get(url, headers=headers)
    assert response.status_code in (200, 304), response.text
    return response


async def test_miss_then_hit_with_identical_bytes_and_etag(
    api: RunningApp, gated: GatedStore
) -> None:
    created = await create(api.http, title="Cached")
    url = item(created["id"])

    miss = await get(api.http, url)
    hit = await get(api.http, url)

    assert miss.headers["x-cache"] == "MISS"
    assert hit.headers["x-cache"] == "HIT"
    assert hit.content == miss.content
    assert miss.json() == created
    assert hit.headers["etag"] == miss.headers["etag"]
    assert miss.headers["etag"].startswith('"')
    assert gated.calls["get"] == 1


async def test_etag_is_the_same_on_every_instance(
    api: RunningApp, launch: Launch, cache_settings: Settings
) -> None:
    """Another instance (memory://: its own cache; Redis: the shared one) and an instance
    with caching off give the same ETag and bytes for the same event."""
    created = await create(api.http, title="Everywhere")
    url = item(created["id"])
    others = [await launch(), await launch(cache_settings.model_copy(update={"cache_url": "none"}))]

    first = await get(api.http, url)
    again = await get(api.http, url)
    elsewhere = [await get(other.http, url) for other in others]

    assert elsewhere[1].headers["x-cache"] == "BYPASS"
    for response in (again, *elsewhere):
        assert response.headers["etag"] == first.headers["etag"]
        assert response.content == first.content


@pytest.mark.parametrize("url", ["item", "list"])
async def test_if_none_match_gives_304_without_a_store_read(
    api: RunningApp, gated: GatedStore, url: str
) -> None:
    created = await create(api.http, title="Conditional")
    target = item(created["id"]) if url == "item" else EVENTS
    first = await get(api.http, target)
    etag = first.headers["etag"]
    calls = dict(gated.calls)

    for matching in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = await get(api.http, target, **{"If-None-Match": matching})
        assert response.status_code == 304, matching
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["x-cache"] == "HIT"
    assert dict(gated.calls) == calls

    other = await get(api.http, target, **{"If-None-Match": '"nope"'})
    assert other.status_code == 200
    assert other.content == first.content
    assert dict(gated.calls) == calls


async def test_missing_event_404_is_cached(api: RunningApp, gated: GatedStore) -> None:
    first = await api.http.get(item(MISSING_ID))
    assert first.status_code == 404
    assert gated.calls["get"] == 1

    second = await api.http.get(item(MISSING_ID))
    assert second.status_code == 404
    assert second.content == first.content
    assert gated.calls["get"] == 1


async def test_get_after_delete_is_404_at_once_and_that_404_is_cached(
    api: RunningApp, gated: GatedStore
) -> None:
    created = await create(api.http, title="Doomed")
    url = item(created["id"])
    await get(api.http, url)
    assert (await get(api.http, url)).headers["x-cache"] == "HIT"
    assert gated.calls["get"] == 1

    deleted = await api.http.delete(url)
    assert deleted.status_code == 200

    gone = await api.http.get(url)
    assert gone.status_code == 404  # the cached 200 went with the delete
    assert gated.calls["get"] == 2
    still_gone = await api.http.get(url)
    assert still_gone.status_code == 404
    assert gated.calls["get"] == 2


@pytest.mark.parametrize("cache_kind", ["none"])
async def test_with_caching_off_every_read_bypasses_and_reads_the_store(
    api: RunningApp, gated: GatedStore
) -> None:
    created = await create(api.http, title="Uncached")
    for n in range(1, 4):
        response = await get(api.http, item(created["id"]))
        assert response.headers["x-cache"] == "BYPASS"
        assert gated.calls["get"] == 2 * n - 1
        page = await get(api.http, EVENTS)
        assert page.headers["x-cache"] == "BYPASS"
        assert gated.calls["list"] == n
        missing = await api.http.get(item(MISSING_ID))
        assert missing.status_code == 404
        assert gated.calls["get"] == 2 * n


async def seed(http: httpx.AsyncClient, count: int) -> None:
    for n in range(count):
        await create(http, title=f"Event {n}", date=f"2025-06-{n + 1:02d}T12:00:00")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("?sort=-date&limit=5", "?limit=5&sort=-date", id="parameter-order"),
        pytest.param("", "?limit=20&offset=0", id="explicit-defaults"),
        pytest.param("?offset=0", "?sort=date&limit=20", id="other-explicit-defaults"),
    ],
)
async def test_equivalent_list_queries_share_one_entry(
    api: RunningApp, gated: GatedStore, first: str, second: str
) -> None:
    await seed(api.http, 7)

    miss = await get(api.http, EVENTS + first)
    hit = await get(api.http, EVENTS + second)

    assert miss.headers["x-cache"] == "MISS"
    assert hit.headers["x-cache"] == "HIT"
    assert gated.calls["list"] == 1
    assert hit.content == miss.content
    for header in ("etag", "x-total-count", "link"):
        assert hit.headers[header] == miss.headers[header]


async def test_different_list_queries_do_not_share_an_entry(
    api: RunningApp, gated: GatedStore
) -> None:
    await seed(api.http, 7)

    ascending = await get(api.http, EVENTS + "?limit=5")
    descending = await get(api.http, EVENTS + "?limit=5&sort=-date")

    assert descending.headers["x-cache"] == "MISS"
    assert gated.calls["list"] == 2
    assert [e["title"] for e in ascending.json()] == [f"Event {n}" for n in range(5)]
    assert [e["title"] for e in descending.json()] == [f"Event {n}" for n in range(6, 1, -1)]


async def test_list_headers_are_identical_on_hit_and_miss(
    api: RunningApp, gated: GatedStore
) -> None:
    await seed(api.http, 7)
    url = EVENTS + "?limit=3&offset=3"

    miss = await get(api.http, url)
    hit = await get(api.http, url)

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert gated.calls["list"] == 1
    assert miss.headers["x-total-count"] == "7"
    assert 'rel="prev"' in miss.headers["link"]
    assert 'rel="next"' in miss.headers["link"]
    for header in ("x-total-count", "link", "etag", "content-type", "cache-control"):
        assert hit.headers[header] == miss.headers[header], header
    assert hit.content == miss.content
