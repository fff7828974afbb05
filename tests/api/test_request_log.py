"""Request ids and the request log, in-process: the id is taken (when safe) or made, echoed
in X-Request-ID, put on every log record of the request, and written on the request's one
log line with the route template, status, duration and cache outcome. The same through a
real `eventapi serve`, text and JSON: tests/cli/test_logs.py."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.logs import FLUSH_LINES, REQUEST_ID, RequestIdFilter, RequestLog
from eventapi.settings import Settings
from tests.support.api import EVENTS, event
from tests.support.app import RunningApp, run_app


@pytest.fixture
async def logged(
    store: EventStore, settings: Settings, fast_path: bool
) -> AsyncIterator[RunningApp]:
    json_logs = settings.model_copy(update={"log_format": "json", "log_level": "info"})
    async with run_app(json_logs, store, fast_path=fast_path) as running:
        yield running


def request_lines(
    running: RunningApp, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, object]]:
    """The request lines so far: written now, not when the batch would be (logs.RequestLog)."""
    running.request_log.flush()
    err = capsys.readouterr().err
    return [
        line
        for line in map(json.loads, err.splitlines())
        if line.get("logger") == "eventapi.request"
    ]


@pytest.mark.parametrize(
    "given",
    ["abc-123", "Root=1-67891233-abcdef012345678912345678", "f" * 128, "a.b_c:d/e+f=g"],
)
async def test_a_safe_request_id_is_echoed(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": given})

    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["", "f" * 129, "has space", "semi;colon", "new\\nline", "é"])
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get("/health", headers=[(b"x-request-id", given.encode("utf-8"))])

    assert response.headers["x-request-id"] not in {given, ""}


async def test_each_request_without_an_id_gets_a_new_one(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/health")).headers["x-request-id"] for _ in range(20)}

    assert len(ids) == 20


async def test_errors_carry_the_request_id_too(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{EVENTS}/not-an-id", headers={"X-Request-ID": "bad-id-1"})

    assert response.status_code == 422
    assert response.headers["x-request-id"] == "bad-id-1"


async def test_one_json_line_per_request_with_every_field(
    logged: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    json_client = logged.http
    created = (await json_client.post(EVENTS, json=event())).json()
    for n in (1, 2):
        response = await json_client.get(
            f"{EVENTS}/{created['id']}", headers={"X-Request-ID": f"read-{n}"}
        )
        assert response.status_code == 200
    await json_client.get(EVENTS, params={"limit": 5})

    lines = request_lines(logged, capsys)

    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("POST", EVENTS, 201),
        ("GET", f"{EVENTS}/{{event_id}}", 200),
        ("GET", f"{EVENTS}/{{event_id}}", 200),
        ("GET", EVENTS, 200),
    ]
    first_read, second_read = lines[1], lines[2]
    assert (first_read["cache"], second_read["cache"]) == ("MISS", "HIT")
    assert (first_read["request_id"], second_read["request_id"]) == ("read-1", "read-2")
    assert lines[0]["cache"] == "-"
    for line in lines:
        assert set(line) == {
            "time",
            "level",
            "logger",
            "client",
            "method",
            "route",
            "status",
            "duration_ms",
            "cache",
            "request_id",
        }
        assert isinstance(line["duration_ms"], float)
        assert str(line["time"]).endswith("Z")


async def test_a_path_no_route_took_is_logged_escaped(
    logged: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await logged.http.get("/nowhere%0aforged 200")

    assert response.status_code == 404
    [line] = request_lines(logged, capsys)
    assert line["route"] == "/nowhere\\nforged 200"


async def test_no_request_lines_below_info(
    store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = settings.model_copy(update={"log_level": "warning"})
    async with run_app(quiet, store) as running:
        assert (await running.http.get("/health")).status_code == 200

    assert "/health" not in capsys.readouterr().err


def test_the_filter_puts_the_current_request_id_on_a_record() -> None:
    record = logging.LogRecord("eventapi", logging.WARNING, __file__, 1, "x", None, None)
    token = REQUEST_ID.set("req-7")
    try:
        assert RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)

    assert record.request_id == "req-7"  # type: ignore[attr-defined]


async def test_lines_wait_for_a_batch_and_are_all_written_at_shutdown(
    store: EventStore, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    json_logs = settings.model_copy(update={"log_format": "json", "log_level": "info"})
    async with run_app(json_logs, store) as running:
        for n in range(3):
            await running.http.get("/health", headers={"X-Request-ID": f"batch-{n}"})
        assert "batch-" not in capsys.readouterr().err  # waiting for FLUSH_AFTER

    ids = [json.loads(line)["request_id"] for line in capsys.readouterr().err.splitlines()]
    assert [i for i in ids if i.startswith("batch-")] == ["batch-0", "batch-1", "batch-2"]


async def test_a_full_batch_is_written_at_once() -> None:
    sink = io.StringIO()
    log = RequestLog("text", sink)
    for n in range(FLUSH_LINES - 1):
        log.write("c", "GET", "/health", 200, 0.001, "-", f"id-{n}")
    assert sink.getvalue() == ""

    log.write("c", "GET", "/health", 200, 0.001, "-", "last")

    lines = sink.getvalue().splitlines()
    assert len(lines) == FLUSH_LINES
    assert lines[-1].endswith(" c GET /health 200 1.0ms - id=last")
