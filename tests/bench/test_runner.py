"""What a run does when a peer or granian cannot run: a skipped row saying why, not a
failed run (bench/runner.py, without starting servers)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import runner, scenarios, server, writers
from bench.client import ServerGone
from bench.options import Options
from bench.pinning import Pinning
from bench.results import Row
from bench.scenarios import Bench
from bench.stats import LoadResult


@pytest.fixture
def run(tmp_path: Path) -> runner._Run:
    made = runner._Run(Options().quick(), "python", Pinning.plan(False), tmp_path)
    made.template.write_bytes(b"")
    return made


def test_peers_that_cannot_run_are_skipped_rows(
    run: runner._Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(target: str) -> str:
        return (
            "fastapi-cache2 is not installed (make install)"
            if target == server.FASTAPI_CACHE
            else ""
        )

    @contextlib.contextmanager
    def fails(target: str, *args: object, **kwargs: object) -> Iterator[int]:
        raise ServerGone(
            "the server exited with code 1 before it was ready; its log ends with:\nboom"
        )
        yield 0  # pragma: no cover

    monkeypatch.setattr(server, "peer_missing", missing)
    monkeypatch.setattr(server, "uvicorn", fails)
    run.peers("redis://127.0.0.1:1/0", ["/api/events/x"])
    assert [(r.key, r.skipped) for r in run.rows] == [
        ("peer-tutorial", "the server exited with code 1 before it was ready; its log ends with:"),
        ("peer-fastapi-cache", "fastapi-cache2 is not installed (make install)"),
    ]
    assert (run.workdir / "peer-tutorial.db").exists()  # a copy of the run's store file


def test_without_granian_its_rows_are_skipped(
    run: runner._Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "granian_version", lambda: None)
    run.granian(Row("cached-memory", "", "memory"), [])
    assert [(r.key, r.skipped) for r in run.rows] == [
        ("floor-granian", "granian is not installed (make install)"),
        ("cached-granian", "granian is not installed (make install)"),
    ]


def test_the_granian_note_compares_with_uvicorn() -> None:
    def measured(rps: float) -> Row:
        return Row("k", "", "-", LoadResult("wrk", 64, round(rps), 1.0, 1, 2, 3))

    assert runner.vs_uvicorn(measured(12_000), measured(10_000)) == (
        "granian; +20% req/s vs the same on uvicorn"
    )
    assert runner.vs_uvicorn(measured(12_000), None) == (
        "granian; no uvicorn measurement to compare with"
    )


def test_concurrent_writers_record_commit_order_from_before_the_servers_start(
    run: runner._Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.closing(sqlite3.connect(run.template)) as db:
        db.execute("CREATE TABLE events (id TEXT PRIMARY KEY, title TEXT NOT NULL)")
    served: list[tuple[dict[str, str], int, bool, list[str]]] = []

    @contextlib.contextmanager
    def redis(workdir: Path, pinning: Pinning) -> Iterator[str]:
        yield "redis://127.0.0.1:1/0"

    @contextlib.contextmanager
    def serve(
        env: dict[str, str], workdir: Path, pinning: Pinning, *, workers: int, pin: bool
    ) -> Iterator[int]:
        with contextlib.closing(sqlite3.connect(run.workdir / "writers.db")) as db:
            triggers = [
                r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ]
        served.append((env, workers, pin, triggers))
        yield 8123

    def scenario(b: Bench, key: str, cache: str, port: int, titles: object, database: Path) -> Row:
        assert (key, cache, port, database) == (
            "zipf-writers",
            "redis",
            8123,
            run.workdir / "writers.db",
        )
        assert not b.pinning.active
        return Row(key, "", cache, note="stale reads: 0")

    monkeypatch.setattr(server, "redis", redis)
    monkeypatch.setattr(server, "eventapi_serve", serve)
    monkeypatch.setattr(scenarios, "zipf_writers", scenario)
    row = run.concurrent_writers({"e": "Event"})
    assert row.note == "stale reads: 0; not pinned"
    [(env, workers, pin, triggers)] = served
    assert (workers, pin) == (2, False)
    assert env["EVENTAPI_CACHE_URL"] == "redis://127.0.0.1:1/0"
    assert env["EVENTAPI_DATABASE_URL"].endswith("/writers.db")
    assert sorted(triggers) == [f"{writers.SIDE_TABLE}_insert", f"{writers.SIDE_TABLE}_update"]
