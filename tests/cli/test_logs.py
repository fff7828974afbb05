"""Logs of a real `eventapi serve`: EVENTAPI_LOG_FORMAT=json makes every line, uvicorn's
and ours, one JSON object; the default is readable text. Each request is one line with its
request id, echoed in X-Request-ID; uvicorn's own access line is gone (no double lines)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.api import EVENTS, event
from tests.support.server import serve

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


@pytest.fixture
def server_env(env: dict[str, str]) -> dict[str, str]:
    # Unbuffered, so the log can be read while the server runs.
    return {**env, "EVENTAPI_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}


def test_json_logs_are_one_object_per_line_with_the_request_id(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, "EVENTAPI_LOG_FORMAT": "json", "EVENTAPI_CACHE_URL": "memory://"}
    with (
        serve(tmp_path, "json", env) as server,
        httpx.Client(base_url=server.url, trust_env=False) as http,
    ):
        server.wait_ready()
        created = http.post(EVENTS, json=event(), headers={"X-Request-ID": "create-1"})
        assert created.headers["x-request-id"] == "create-1"
        read = http.get(f"{EVENTS}/{created.json()['id']}", headers={"X-Request-ID": "read-1"})
        assert read.headers["x-request-id"] == "read-1"
        server.wait_for_line('"read-1"')
        lines = server.output().splitlines()

    records = [json.loads(line) for line in lines]  # every line, uvicorn's included
    assert {"Application startup complete."} <= {r.get("message") for r in records}
    requests = {r["request_id"]: r for r in records if r["logger"] == "eventapi.request"}
    assert requests["create-1"]["status"] == 201
    assert requests["create-1"]["route"] == EVENTS
    assert requests["read-1"]["route"] == f"{EVENTS}/{{event_id}}"
    assert requests["read-1"]["cache"] == "MISS"
    assert requests["read-1"]["client"] == "127.0.0.1"


def test_text_logs_are_one_readable_line_per_request(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    with (
        serve(tmp_path, "text", server_env) as server,
        httpx.Client(base_url=server.url, trust_env=False) as http,
    ):
        server.wait_ready()
        assert http.get("/health", headers={"X-Request-ID": "probe-1"}).status_code == 200
        server.wait_for_line("id=probe-1")
        lines = server.output().splitlines()

    [line] = [line for line in lines if "id=probe-1" in line]
    stamp, client, method, route, status, duration, cache, rid = line.split()
    assert stamp.endswith("Z")
    assert (client, method, route, status, cache, rid) == (
        "127.0.0.1",
        "GET",
        "/health",
        "200",
        "-",
        "id=probe-1",
    )
    assert duration.endswith("ms")
    assert not [line for line in lines if '"GET /health HTTP/1.1"' in line]  # uvicorn's
