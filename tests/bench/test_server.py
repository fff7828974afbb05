"""How the bench starts what it measures: the app as the README runs it (`eventapi serve`),
everything else on uvicorn with the same protocol class and options, and granian."""

from __future__ import annotations

import importlib.util
import itertools
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from bench import client, floor, server
from bench.client import HOST
from bench.pinning import Pinning
from eventapi.http.connections import PROTOCOL
from eventapi.settings import Settings

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

UNPINNED = Pinning.plan(enabled=False)
DEFAULTS = Settings.model_fields  # what `eventapi serve` passes when nothing is set


def test_uvicorn_gets_what_eventapi_serve_gives_it() -> None:
    cmd = server.uvicorn_command(server.FLOOR, 8123)
    options = dict(itertools.pairwise(cmd))
    assert options["--http"] == PROTOCOL
    assert options["--timeout-keep-alive"] == str(DEFAULTS["keepalive_timeout"].default)
    assert options["--timeout-graceful-shutdown"] == str(DEFAULTS["shutdown_timeout"].default)
    assert (options["--port"], options["--workers"]) == ("8123", "1")
    assert {"--no-access-log", "--no-proxy-headers"} <= set(cmd)  # as `eventapi serve` runs
    assert "--factory" not in cmd
    for factory in (server.SLOW_APP, server.TUTORIAL, server.FASTAPI_CACHE):
        assert server.uvicorn_command(factory, 1)[-1] == "--factory"


def test_the_app_is_started_by_the_console_script() -> None:
    cmd = server.eventapi_command(8124, workers=2)
    assert Path(cmd[0]).name == "eventapi"
    assert cmd[1:] == ["serve", "--host", HOST, "--port", "8124", "--workers", "2"]


def test_granian_serves_over_asgi_with_one_worker() -> None:
    cmd = server.granian_command(server.APP, 8125)
    options = dict(itertools.pairwise(cmd))
    assert (options["--interface"], options["--workers"], options["--http"]) == ("asgi", "1", "1")
    assert options["--http1-header-read-timeout"] == str(
        round(DEFAULTS["header_timeout"].default * 1000)
    )
    assert cmd[-2:] == ["--factory", server.APP]
    assert server.granian_command(server.FLOOR, 1)[-1] == server.FLOOR
    assert server.granian_version()


def test_peer_env_names_the_store_and_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTAPI_CACHE_URL", "memory://")
    monkeypatch.setenv("BENCH_STORE_LATENCY", "0.05")
    env = server.peer_env(tmp_path / "p.db", "redis://127.0.0.1:1/0")
    assert env["BENCH_PEER_DATABASE"] == str((tmp_path / "p.db").resolve())
    assert env["BENCH_PEER_REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert not [k for k in env if k.startswith("EVENTAPI_")]
    assert "BENCH_STORE_LATENCY" not in env


def test_a_peer_that_is_not_installed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.peer_missing(server.FASTAPI_CACHE) == ""
    assert server.peer_missing(server.TUTORIAL) == ""
    real = importlib.util.find_spec

    def without_jinja(name: str, package: str | None = None) -> object:
        return None if name == "jinja2" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_jinja)
    assert server.peer_missing(server.FASTAPI_CACHE) == "jinja2 is not installed (make install)"


def header_timed_out(port: int, within: float = 5.0) -> bytes:
    """Open a connection, send nothing, and return what the server answers."""
    with socket.create_connection((HOST, port), timeout=within) as sock:
        started = time.monotonic()
        data = b""
        while time.monotonic() - started < within:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_eventapi_serve_and_the_floor_both_run_the_header_timer(tmp_path: Path) -> None:
    env = {**server.app_env(tmp_path / "app.db", "memory://"), "EVENTAPI_HEADER_TIMEOUT": "0.3"}
    with server.eventapi_serve(env, tmp_path, UNPINNED) as port:
        assert client.request(port, "GET", "/health")[0] == 200
        assert header_timed_out(port).startswith(b"HTTP/1.1 408 ")
    with server.uvicorn(server.FLOOR, env, tmp_path, UNPINNED) as port:
        assert header_timed_out(port).startswith(b"HTTP/1.1 408 ")


def test_granian_serves_the_floor_and_the_app(tmp_path: Path) -> None:
    env = server.app_env(tmp_path / "g.db", "memory://")
    with server.granian(server.FLOOR, env, tmp_path, UNPINNED) as port:
        status, headers, body = client.request(port, "GET", "/api/events/x")
    assert (status, headers["server"], body) == (200, "granian", floor.BODY)
    with server.granian(server.APP, env, tmp_path, UNPINNED) as port:
        status, headers, _ = client.request(port, "GET", "/api/events/0123456789abcdef01234567")
        assert (status, headers["server"]) == (404, "granian")
        assert client.scrape(port).total("eventapi_cache_requests_total") >= 1


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTAPI_")}
    env["EVENTAPI_PORT"] = "not a port"
    with (
        pytest.raises(client.ServerGone, match="EVENTAPI_PORT"),
        server.eventapi_serve(env, tmp_path, UNPINNED),
    ):
        pass  # pragma: no cover - never started


ANSWER_ONCE = """\
import http.server, sys
class Once(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Once)
server.handle_request()
print("answered once, exiting")
"""


def test_a_server_that_dies_while_measured_is_reported_with_its_log(tmp_path: Path) -> None:
    def command(port: int) -> list[str]:
        return [sys.executable, "-c", ANSWER_ONCE, str(port)]

    with (
        pytest.raises(client.ServerGone, match=r"exited with code 0 while measured") as gone,
        server.serving(command, dict(os.environ), tmp_path, UNPINNED) as port,
    ):
        client.request(port, "GET", "/health")  # wait_ready had the one answer
    assert "answered once, exiting" in str(gone.value)


def test_an_error_while_the_server_runs_is_not_blamed_on_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTAPI_")}
    with (
        pytest.raises(OSError, match="not the server"),
        server.uvicorn(server.FLOOR, env, tmp_path, UNPINNED),
    ):
        raise OSError("not the server")
