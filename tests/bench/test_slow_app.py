"""The benchmark's slow store and the app factory that serves it, and its command line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from bench.__main__ import parse
from bench.apps import latency_from_env, slow_app
from bench.options import Options
from bench.server import APP, LATENCY_ENV, SLOW_APP, app_env, app_target
from bench.slow_store import DelayedStore
from eventapi.events.samples import SAMPLE_EVENTS
from eventapi.events.schemas import EVENT_FIELDS, EventCreate, EventQuery
from eventapi.events.store import EventStore
from eventapi.storage.sqlite import SqliteEventStore
from tests.support.app import run_app

T = TypeVar("T")
DELAY = 0.05


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    store = await SqliteEventStore.open(str(tmp_path / "slow.db"), timeout=10.0)
    try:
        yield store
    finally:
        await store.close()


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await call
    return result, time.perf_counter() - start


async def test_the_five_request_calls_wait_and_the_rest_pass_through(
    sqlite: SqliteEventStore,
) -> None:
    store: EventStore = DelayedStore(sqlite, DELAY)  # the whole protocol, checked by mypy
    assert store.backend == "sqlite"
    sample = SAMPLE_EVENTS[1]
    create = EventCreate.model_validate(sample.model_dump(include=set(EVENT_FIELDS)))

    saved, took = await timed(store.create(create))
    assert took >= DELAY
    event_id = saved.event.id
    got, took = await timed(store.get(event_id))
    assert got == saved.event
    assert took >= DELAY
    page, took = await timed(store.list(EventQuery(limit=20, offset=0)))
    assert [e.id for e in page.items] == [event_id]
    assert took >= DELAY
    updated, took = await timed(store.update(event_id, {"title": "Renamed"}))
    assert updated is not None
    assert updated.event.title == "Renamed"
    assert took >= DELAY
    seq, took = await timed(store.delete(event_id))
    assert seq is not None
    assert took >= DELAY

    slow: EventStore = DelayedStore(sqlite, 30.0)  # a delay here would time out
    async with asyncio.timeout(5):
        assert await slow.insert_missing([sample]) == 1
        assert await slow.count() == 1
        batch = await slow.changes_since(0, 100)
        assert batch == await sqlite.changes_since(0, 100)
        await slow.ping()
        assert await slow.delete_all() == 1


async def test_slow_app_serves_the_configured_store_with_the_delay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in app_env(tmp_path / "app.db", "none", DELAY).items():
        monkeypatch.setenv(name, value)
    app = slow_app()
    async with run_app(app=app) as running:
        http = running.http
        assert isinstance(running.store, DelayedStore)
        assert running.store.delay == DELAY
        response, took = await timed(http.get(f"/api/events/{SAMPLE_EVENTS[1].id}"))
    assert response.status_code == 404
    assert took >= DELAY


def test_the_slow_app_is_served_only_when_latency_is_added(tmp_path: Path) -> None:
    assert app_target(0.0) == APP
    assert app_target(DELAY) == SLOW_APP
    assert LATENCY_ENV not in app_env(tmp_path / "a.db", "none", 0.0)
    assert app_env(tmp_path / "a.db", "none", DELAY)[LATENCY_ENV] == "0.05"


@pytest.mark.parametrize("value", ["", "fast", "0", "-1", "11", "nan"])
def test_a_bad_latency_stops_the_server(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(LATENCY_ENV, value)
    with pytest.raises(ValueError, match=LATENCY_ENV):
        latency_from_env()


def test_command_line_defaults_are_the_options_defaults() -> None:
    opts, quick = parse([])
    assert opts == Options(command="python -m bench")
    assert not quick
    opts, quick = parse(["--quick", "--no-pin", "--store-latency", "0.01", "--workers", "2"])
    assert (opts.pin, opts.store_latency, opts.workers, quick) == (False, 0.01, 2, True)
    assert opts.command == "python -m bench --quick --no-pin --store-latency 0.01 --workers 2"


@pytest.mark.parametrize("args", [["--events", "0"], ["--store-latency", "10.5"]])
def test_bad_options_exit_with_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(args)
    assert exited.value.code == 2
