"""The date rule through HTTP: naive as sent, aware in UTC with Z, to the millisecond."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import EVENTS, create


async def read_back(client: httpx.AsyncClient, event_id: str) -> list[str]:
    """The event's date as GET by id and as the list return it."""
    one = await client.get(f"{EVENTS}/{event_id}")
    many = await client.get(EVENTS)
    [listed] = [item for item in many.json() if item["id"] == event_id]
    return [one.json()["date"], listed["date"]]


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        pytest.param("2025-12-01T10:00:00", "2025-12-01T10:00:00", id="naive"),
        pytest.param("2025-12-01T10:00:00.123", "2025-12-01T10:00:00.123", id="naive-ms"),
        pytest.param("2025-12-01T10:00:00.123456", "2025-12-01T10:00:00.123", id="naive-us"),
        pytest.param("2025-12-01T10:00:00.999999", "2025-12-01T10:00:00.999", id="truncated"),
        pytest.param("2025-12-01T10:00:00.000999", "2025-12-01T10:00:00", id="sub-ms"),
        pytest.param("2025-12-01T10:00:00+02:00", "2025-12-01T08:00:00Z", id="plus-2"),
        pytest.param("2025-12-01T10:00:00-05:30", "2025-12-01T15:30:00Z", id="minus-5-30"),
        pytest.param("2025-12-01T01:00:00+02:00", "2025-11-30T23:00:00Z", id="day-before"),
        pytest.param("2025-12-01T10:00:00Z", "2025-12-01T10:00:00Z", id="z"),
        pytest.param("2025-12-01T10:00:00+00:00", "2025-12-01T10:00:00Z", id="plus-0"),
        pytest.param("2025-12-01T10:00:00.123456+02:00", "2025-12-01T08:00:00.123Z", id="aware-us"),
    ],
)
async def test_date_on_create(client: httpx.AsyncClient, sent: str, returned: str) -> None:
    created = await create(client, date=sent)

    assert created["date"] == returned
    assert await read_back(client, created["id"]) == [returned, returned]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_date_on_update(client: httpx.AsyncClient, method: str) -> None:
    created = await create(client, date="2025-01-01T00:00:00")
    body = {"date": "2025-12-01T10:00:00.654321+02:00"}
    if method == "PUT":
        body["title"] = "Replaced"

    response = await client.request(method, f"{EVENTS}/{created['id']}", json=body)

    assert response.status_code == 200
    assert response.json()["date"] == "2025-12-01T08:00:00.654Z"
    assert await read_back(client, created["id"]) == ["2025-12-01T08:00:00.654Z"] * 2


async def test_update_from_aware_to_naive(client: httpx.AsyncClient) -> None:
    created = await create(client, date="2025-01-01T00:00:00+02:00")
    assert created["date"] == "2024-12-31T22:00:00Z"

    response = await client.patch(f"{EVENTS}/{created['id']}", json={"date": "2025-03-03T03:03:03"})

    assert response.json()["date"] == "2025-03-03T03:03:03"
    assert await read_back(client, created["id"]) == ["2025-03-03T03:03:03"] * 2
