"""Create, read, replace, patch and delete one event through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    EVENT_KEYS,
    ID_PATTERN,
    assert_problem,
    fields,
    ids,
    total,
    with_defaults,
)
from tests.support.api import (
    CURL_BODY,
    EVENTS,
    MISSING_ID,
    MUSIC_FESTIVAL,
    PYTHON_BODY,
    README_POST,
    create,
    event,
)

FULL = {key: value for key, value in MUSIC_FESTIVAL.items() if key != "id"}


async def test_post_returns_201_location_and_the_stored_event(client: httpx.AsyncClient) -> None:
    response = await client.post(EVENTS, json=README_POST)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == EVENT_KEYS
    assert ID_PATTERN.match(body["id"])
    assert fields(body) == with_defaults({"id": body["id"], **README_POST})
    assert body["created_at"] == body["updated_at"]
    assert response.headers["last-modified"]
    assert response.headers["location"] == f"{EVENTS}/{body['id']}"

    stored = await client.get(response.headers["location"])
    assert stored.status_code == 200
    assert stored.json() == body


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(CURL_BODY, id="readme-curl"),
        pytest.param(PYTHON_BODY, id="readme-python"),
    ],
)
async def test_readme_post_examples_without_organizer(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post(EVENTS, json=payload)

    assert response.status_code == 201
    body = response.json()
    assert fields(body) == with_defaults({"id": body["id"], **payload, "organizer": None})
    assert (await client.get(f"{EVENTS}/{body['id']}")).json() == body


async def test_post_with_required_fields_only_returns_nulls(client: httpx.AsyncClient) -> None:
    body = await create(client, title="Bare", date="2025-01-01T00:00:00")

    assert fields(body) == with_defaults(
        {
            "id": body["id"],
            "title": "Bare",
            "description": None,
            "date": "2025-01-01T00:00:00",
            "location": None,
            "category": None,
            "organizer": None,
        }
    )
    assert (body["date_utc"], body["end_utc"]) == (None, None)  # floating: no instant


async def test_post_trims_surrounding_spaces(client: httpx.AsyncClient) -> None:
    body = await create(client, title="  Spaced  ", location=" Paris ", category="\tArt\n")

    assert (body["title"], body["location"], body["category"]) == ("Spaced", "Paris", "Art")
    assert (await client.get(f"{EVENTS}/{body['id']}")).json() == body


async def test_each_post_gets_a_new_id(client: httpx.AsyncClient) -> None:
    first = await create(client, **FULL)
    second = await create(client, **FULL)

    assert first["id"] != second["id"]
    assert await total(client) == 2


async def test_get_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    await create(client)

    problem = assert_problem(await client.get(f"{EVENTS}/{MISSING_ID}"), 404)
    assert problem["type"].endswith("/event-not-found")
    assert MISSING_ID in problem["detail"]


async def test_put_replaces_the_whole_event(client: httpx.AsyncClient) -> None:
    created = await create(client, **FULL)
    url = f"{EVENTS}/{created['id']}"

    response = await client.put(url, json={"title": "Renamed", "date": "2026-01-02T03:04:05"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = {
        "id": created["id"],
        "title": "Renamed",
        "description": None,
        "date": "2026-01-02T03:04:05",
        "location": None,
        "category": None,
        "organizer": None,
    }
    expected = with_defaults(expected)
    assert fields(response.json()) == expected
    assert fields((await client.get(url)).json()) == expected
    assert await total(client) == 1


async def test_put_with_every_field_sets_every_field(client: httpx.AsyncClient) -> None:
    created = await create(client)
    url = f"{EVENTS}/{created['id']}"

    response = await client.put(url, json=FULL)

    assert response.status_code == 200
    assert fields(response.json()) == with_defaults({"id": created["id"], **FULL})
    assert fields((await client.get(url)).json()) == with_defaults({"id": created["id"], **FULL})


async def test_put_unknown_id_is_404_and_creates_nothing(client: httpx.AsyncClient) -> None:
    await create(client)

    problem = assert_problem(await client.put(f"{EVENTS}/{MISSING_ID}", json=event()), 404)
    assert problem["type"].endswith("/event-not-found")
    assert await total(client) == 1
    assert MISSING_ID not in await ids(client)


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    created = await create(client, **FULL)
    url = f"{EVENTS}/{created['id']}"

    response = await client.patch(url, json={"location": "Boston, MA", "title": "New title"})

    assert response.status_code == 200
    expected = {**fields(created), "location": "Boston, MA", "title": "New title"}
    assert fields(response.json()) == expected
    assert fields((await client.get(url)).json()) == expected
    assert response.json()["created_at"] == created["created_at"]
    assert response.json()["updated_at"] >= created["updated_at"]


async def test_patch_null_clears_optional_fields(client: httpx.AsyncClient) -> None:
    created = await create(client, **FULL)
    url = f"{EVENTS}/{created['id']}"

    response = await client.patch(url, json={"description": None, "organizer": None})

    assert response.status_code == 200
    expected = {**fields(created), "description": None, "organizer": None}
    assert fields(response.json()) == expected
    assert fields((await client.get(url)).json()) == expected


async def test_patch_can_clear_every_optional_field(client: httpx.AsyncClient) -> None:
    created = await create(client, **FULL)
    url = f"{EVENTS}/{created['id']}"
    cleared = dict.fromkeys(("description", "location", "category", "organizer"))

    response = await client.patch(url, json=cleared)

    assert response.status_code == 200
    assert fields((await client.get(url)).json()) == {**fields(created), **cleared}


async def test_patch_empty_body_changes_nothing(client: httpx.AsyncClient) -> None:
    created = await create(client, **FULL)
    url = f"{EVENTS}/{created['id']}"

    response = await client.patch(url, json={})

    assert response.status_code == 200
    assert response.json() == created
    assert (await client.get(url)).json() == created


@pytest.mark.parametrize("field", ["title", "date"])
async def test_patch_null_for_a_required_field_is_422(
    client: httpx.AsyncClient, field: str
) -> None:
    created = await create(client, **FULL)
    url = f"{EVENTS}/{created['id']}"

    response = await client.patch(url, json={field: None, "location": "Elsewhere"})

    problem = assert_problem(response, 422)
    assert field in str(problem["errors"])
    assert (await client.get(url)).json() == created


async def test_patch_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    await create(client)

    problem = assert_problem(await client.patch(f"{EVENTS}/{MISSING_ID}", json={"title": "x"}), 404)
    assert problem["type"].endswith("/event-not-found")
    assert await total(client) == 1


async def test_delete_then_the_event_is_gone(client: httpx.AsyncClient) -> None:
    keep = await create(client, title="Keep")
    gone = await create(client, title="Gone")
    url = f"{EVENTS}/{gone['id']}"

    response = await client.delete(url)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": f"Event {gone['id']} deleted successfully"}
    assert_problem(await client.get(url), 404)
    assert_problem(await client.delete(url), 404)
    assert_problem(await client.put(url, json=event()), 404)
    assert_problem(await client.patch(url, json={"title": "x"}), 404)
    assert await ids(client) == [keep["id"]]


async def test_delete_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    await create(client)

    problem = assert_problem(await client.delete(f"{EVENTS}/{MISSING_ID}"), 404)
    assert problem["type"].endswith("/event-not-found")
    assert await total(client) == 1


async def test_list_is_a_json_array_in_the_original_shape(client: httpx.AsyncClient) -> None:
    full = await create(client, **FULL)
    bare = await create(client, title="Bare", date="2025-09-01T00:00:00")

    response = await client.get(EVENTS)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, list)
    assert [list(item) for item in body] == [EVENT_KEYS, EVENT_KEYS]
    assert body == [full, bare]


async def test_empty_list_is_an_empty_array(client: httpx.AsyncClient) -> None:
    response = await client.get(EVENTS)

    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"


async def test_upper_case_id_is_normalised_to_lower_case(client: httpx.AsyncClient) -> None:
    # Upper-casing must change the id for this test to mean anything: an id with no hex
    # letter (odds about 1 in 80,000) is deleted and another one created.
    for _ in range(5):
        created = await create(client, **FULL)
        event_id = created["id"]
        if event_id != event_id.upper():
            break
        assert (await client.delete(f"{EVENTS}/{event_id}")).status_code == 200
    assert event_id != event_id.upper()
    upper = f"{EVENTS}/{event_id.upper()}"

    got = await client.get(upper)
    assert got.status_code == 200
    assert got.json() == created

    put = await client.put(upper, json={**FULL, "title": "Put"})
    assert put.status_code == 200
    assert fields(put.json()) == {**fields(created), "title": "Put"}

    patched = await client.patch(upper, json={"title": "Patched"})
    assert patched.status_code == 200
    assert fields(patched.json()) == {**fields(created), "title": "Patched"}
    assert (await client.get(f"{EVENTS}/{event_id}")).json() == patched.json()

    deleted = await client.delete(upper)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": f"Event {event_id} deleted successfully"}
    assert_problem(await client.get(f"{EVENTS}/{event_id}"), 404)
