"""`python main.py` over real HTTP: the original README's "Test API Endpoints", then shutdown."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from eventapi.events.samples import SAMPLE_EVENTS
from tests.support.api import CURL_BODY, MUSIC_FESTIVAL, PYTHON_BODY
from tests.support.server import PYTHON, SEED_DB, Server, free_port, main_py, port_is_free, run

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


def assert_stopped_cleanly(server: Server, sig: signal.Signals) -> None:
    code = server.stop(sig)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so a supervisor sees the cause.
    assert code in {0, -sig}, server.output()
    log = server.output()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log


def create(http: httpx.Client, body: dict[str, str]) -> str:
    created = http.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event = created.json()
    assert re.fullmatch(r"[0-9a-f]{24}", event["id"])
    original = {key: event[key] for key in ("id", "organizer", *body)}
    assert original == {"id": event["id"], "organizer": None, **body}
    assert created.headers["location"] == f"/api/events/{event['id']}"
    event_id: str = event["id"]
    return event_id


def test_readme_examples_over_http(env: dict[str, str], tmp_path: Path) -> None:
    seeded = run([PYTHON, SEED_DB, "--insert-samples"], env, tmp_path)
    assert seeded.returncode == 0, seeded
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {**env, "EVENTAPI_PORT": str(port), "EVENTAPI_LOG_LEVEL": "info"}
    with (
        main_py(server_env, tmp_path, url) as server,
        httpx.Client(base_url=url, trust_env=False) as http,
    ):
        server.wait_ready()

        listed = http.get("/api/events")
        assert listed.status_code == 200
        assert listed.headers["x-total-count"] == str(len(SAMPLE_EVENTS))
        assert {e["id"] for e in listed.json()} == {e.id for e in SAMPLE_EVENTS}

        one = http.get("/api/events/68ed254e36d0233aa05afbe9")
        # As the original README shows it, with the calendar fields added beside.
        festival = one.json()
        assert one.status_code == 200
        assert {key: festival[key] for key in MUSIC_FESTIVAL} == MUSIC_FESTIVAL
        assert festival["status"] == "scheduled"
        # Our README's caching demo reads an event the quick start has not: MISS, then HIT.
        demo = "/api/events/68ed254e36d0233aa05afbe1"
        assert [http.get(demo).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]

        curl_id = create(http, CURL_BODY)
        python_id = create(http, PYTHON_BODY)
        assert http.get(f"/api/events/{python_id}").json()["title"] == "Workshop 2025"

        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        assert {"status", "redis", "mongodb"} <= health.json().keys()

        for page in ("/docs", "/redoc"):
            docs = http.get(page)
            assert docs.status_code == 200
            assert docs.headers["content-type"].startswith("text/html")
        assert http.get("/openapi.json").json()["paths"].keys() >= {"/api/events", "/health"}

        deleted = http.delete(f"/api/events/{curl_id}")
        assert (deleted.status_code, deleted.json()) == (
            200,
            {"message": f"Event {curl_id} deleted successfully"},
        )
        assert http.get(f"/api/events/{curl_id}").status_code == 404

        assert_stopped_cleanly(server, signal.SIGINT)


def test_sigterm_stops_the_server(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with main_py({**env, "EVENTAPI_PORT": str(port)}, tmp_path, url) as server:
        server.wait_ready()
        assert_stopped_cleanly(server, signal.SIGTERM)


def test_default_port_is_8000(env: dict[str, str], tmp_path: Path) -> None:
    if not port_is_free(8000):
        pytest.skip("port 8000 is in use on this machine, so `python main.py` cannot take it")
    with main_py(env, tmp_path, "http://localhost:8000") as server:
        server.wait_ready()
        assert "Uvicorn running on http://127.0.0.1:8000" in server.output()
        assert_stopped_cleanly(server, signal.SIGINT)
