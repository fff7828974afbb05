"""Idempotency-Key across a restart: a client whose POST timed out retries it after the
server was SIGKILLed and another started on the same database; the retry gets the original
response and the database holds one event. The record is in the store, not in memory or
the cache."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.api import EVENTS, event
from tests.support.server import kill, serve
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

KEY = "retry-after-timeout-1"


async def test_a_retry_after_a_restart_gets_the_original_response(tmp_path: Path) -> None:
    env = server_env(tmp_path / "app.db", "none")
    body = event("Gala", 3, location="Paris")

    with serve(tmp_path, "A", env) as first:
        first.wait_ready()
        async with httpx.AsyncClient(base_url=first.url, trust_env=False, timeout=15.0) as http:
            original = await http.post(EVENTS, json=body, headers={"Idempotency-Key": KEY})
        assert original.status_code == 201, original.text
        kill(first)

    with serve(tmp_path, "B", env) as second:
        second.wait_ready()
        async with httpx.AsyncClient(base_url=second.url, trust_env=False, timeout=15.0) as http:
            retry = await http.post(EVENTS, json=body, headers={"Idempotency-Key": KEY})
            other = await http.post(EVENTS, json=event("Other"), headers={"Idempotency-Key": KEY})
            listed = await http.get(EVENTS)

    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == original.content
    assert retry.headers["etag"] == original.headers["etag"]
    assert retry.headers["location"] == original.headers["location"]
    assert other.status_code == 422
    assert listed.json() == [original.json()]
