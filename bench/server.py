"""The processes under test: the app as users start it, uvicorn (the floor, the slow-store
app and the peers), granian (the same floor and app, for comparison) and a throwaway
redis-server.

- The app: ``eventapi serve`` (the console script the README's "Running it" names), which
  runs uvicorn with the product's protocol class (http/connections.py's
  HeaderTimeoutProtocol: a header timer per request), its keep-alive and shutdown
  time-outs and no uvicorn access log.
- Everything else uvicorn serves gets the same protocol class and the same options on the
  uvicorn command line (UVICORN_OPTIONS), so the floor's ratio compares like with like:
  the floor (bench.floor), the slow-store app (bench.apps:slow_app, a factory the console
  script cannot start) and the peers (bench.peers).
- granian: ASGI interface, one worker, HTTP/1, uvloop, its header-read time-out set to the
  app's header time-out. Measurement only: the product is served by uvicorn.

Each runs as a separate process on a free loopback port, pinned to the server CPUs when
pinning is on, logging into the run's temporary folder, and is always stopped on exit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

from bench.client import HOST, ServerGone, wait_ready
from bench.peers import DATABASE_ENV, REDIS_ENV
from bench.pinning import Pinning
from eventapi.http.connections import PROTOCOL
from eventapi.settings import Settings

APP = "eventapi.app:app_from_env"  # what `eventapi serve` runs
SLOW_APP = "bench.apps:slow_app"  # the app over a store with added latency
FLOOR = "bench.floor:app"
TUTORIAL = "bench.peers:tutorial_app"
FASTAPI_CACHE = "bench.peers:fastapi_cache_app"
FACTORIES = {APP, SLOW_APP, TUTORIAL, FASTAPI_CACHE}  # served with --factory
LATENCY_ENV = "BENCH_STORE_LATENCY"  # seconds, read by bench.apps:slow_app
_DEFAULTS = Settings.model_fields
KEEPALIVE = _DEFAULTS["keepalive_timeout"].default  # seconds: what `eventapi serve` passes
SHUTDOWN = _DEFAULTS["shutdown_timeout"].default
HEADER_TIMEOUT = _DEFAULTS["header_timeout"].default
# uvicorn's command line for everything it serves besides the app: what `eventapi serve`
# passes to uvicorn.run (cli.py) when nothing is set, as options. --no-proxy-headers: it
# trusts X-Forwarded-* only from EVENTAPI_TRUSTED_PROXIES (unset), where uvicorn's own
# default wraps every request in its proxy-headers middleware.
UVICORN_OPTIONS = [
    "--http", PROTOCOL, "--timeout-keep-alive", str(KEEPALIVE),
    "--timeout-graceful-shutdown", str(SHUTDOWN), "--no-proxy-headers", "--no-access-log",
    "--log-level", "warning",
]  # fmt: skip
# The folder holding the bench package: on the servers' import path, so uvicorn (started
# in the run's temporary folder) finds bench.apps and bench.floor.
ROOT = Path(__file__).resolve().parent.parent
STOP_WITHIN = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def app_env(
    database: Path, cache_url: str, store_latency: float = 0.0, log_level: str = "warning"
) -> dict[str, str]:
    """This environment without any EVENTAPI_* or BENCH_* variable, plus the run's own
    settings (BENCH_STORE_LATENCY only for the slow app: see app_target). ``info`` turns the
    request log on (one line per request, into the server's log file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTAPI_", "BENCH_"))}
    env.update(
        EVENTAPI_DATABASE_URL=f"sqlite:///{database.resolve()}",
        EVENTAPI_CACHE_URL=cache_url,
        EVENTAPI_LOG_LEVEL=log_level,
    )
    if store_latency > 0:
        env[LATENCY_ENV] = repr(store_latency)
    return env


def peer_env(database: Path, redis_url: str) -> dict[str, str]:
    """This environment without any EVENTAPI_* or BENCH_* variable, plus where a peer
    (bench.peers) finds the store's SQLite file and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTAPI_", "BENCH_"))}
    env.update({DATABASE_ENV: str(database.resolve()), REDIS_ENV: redis_url})
    return env


def app_target(store_latency: float = 0.0) -> str:
    """The app to serve: the product's own factory, or slow_app when latency is added."""
    return SLOW_APP if store_latency > 0 else APP


def _import_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ROOT first on PYTHONPATH."""
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_WITHIN)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def uvicorn_command(target: str, port: int, workers: int = 1) -> list[str]:
    """``python -m uvicorn`` serving ``target`` (module:attr) with UVICORN_OPTIONS."""
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", HOST, "--port", str(port)]
    cmd += [*UVICORN_OPTIONS, "--workers", str(workers)]
    if target in FACTORIES:
        cmd.append("--factory")
    return cmd


def eventapi_command(port: int, workers: int = 1) -> list[str]:
    """The console script as the README runs it: ``eventapi serve`` (settings from the
    EVENTAPI_* environment)."""
    script = Path(sys.executable).with_name("eventapi")
    found = str(script) if script.exists() else shutil.which("eventapi")
    if found is None:
        raise ServerGone("the eventapi console script is not installed (make install)")
    return [found, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]


def granian_command(target: str, port: int) -> list[str]:
    """granian serving ``target`` over ASGI: one worker, HTTP/1, uvloop as uvicorn uses,
    its header-read time-out the app's header time-out (what HeaderTimeoutProtocol adds to
    uvicorn), no access log (its default)."""
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1"]
    cmd += ["--http", "1", "--no-ws", "--loop", "uvloop", "--log-level", "warning"]
    cmd += ["--http1-header-read-timeout", str(round(HEADER_TIMEOUT * 1000))]
    cmd += ["--host", HOST, "--port", str(port)]
    if target in FACTORIES:
        cmd.append("--factory")
    return [*cmd, target]


def peer_missing(target: str) -> str:
    """Why the peer ``target`` cannot be served here ("" when it can)."""
    if target == FASTAPI_CACHE:
        for module, package in (("fastapi_cache", "fastapi-cache2"), ("jinja2", "jinja2")):
            if importlib.util.find_spec(module) is None:
                return f"{package} is not installed (make install)"
    return ""


def granian_version() -> str | None:
    """granian's version, None when it is not installed."""
    try:
        return metadata.version("granian")
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def serving(
    command: Callable[[int], list[str]],
    env: dict[str, str],
    workdir: Path,
    pinning: Pinning,
    *,
    pin: bool = True,
) -> Iterator[int]:
    """Run ``command(port)`` on a free port (on the server CPUs if ``pin``); yields the port
    once GET /health answers 200."""
    port = free_port()
    cmd = [*(pinning.server_prefix() if pin else []), *command(port)]
    log = workdir / f"server-{port}.log"
    env = _import_path(env)
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
        )
    try:
        try:
            wait_ready(port, proc)
        except ServerGone as exc:
            raise ServerGone(f"{exc}; its log ends with:\n{_tail(log)}") from None
        try:
            yield port
        except (OSError, RuntimeError) as exc:
            try:  # did the server die (it may be a moment from exiting)?
                code = proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                raise exc from None
            raise ServerGone(
                f"the server exited with code {code} while measured ({exc}); "
                f"its log ends with:\n{_tail(log, 40)}"
            ) from exc
    finally:
        _stop(proc)


def uvicorn(
    target: str,
    env: dict[str, str],
    workdir: Path,
    pinning: Pinning,
    *,
    workers: int = 1,
    pin: bool = True,
) -> contextlib.AbstractContextManager[int]:
    """Serve ``target`` (module:attr) with uvicorn and UVICORN_OPTIONS."""
    return serving(
        lambda port: uvicorn_command(target, port, workers), env, workdir, pinning, pin=pin
    )


def eventapi_serve(
    env: dict[str, str], workdir: Path, pinning: Pinning, *, workers: int = 1, pin: bool = True
) -> contextlib.AbstractContextManager[int]:
    """Serve the app with ``eventapi serve``, configured by ``env`` (see app_env)."""
    return serving(lambda port: eventapi_command(port, workers), env, workdir, pinning, pin=pin)


def granian(
    target: str, env: dict[str, str], workdir: Path, pinning: Pinning
) -> contextlib.AbstractContextManager[int]:
    """Serve ``target`` with granian (see granian_command)."""
    return serving(lambda port: granian_command(target, port), env, workdir, pinning)


REDIS_SERVER = shutil.which("redis-server")


@contextlib.contextmanager
def redis(workdir: Path, pinning: Pinning) -> Iterator[str]:
    """A private redis-server (no persistence) on a free port; yields its URL."""
    if REDIS_SERVER is None:
        raise ServerGone("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    cmd = [*pinning.redis_prefix(), REDIS_SERVER, "--port", str(port), "--bind", HOST]
    cmd += ["--save", "", "--appendonly", "no", "--dir", str(workdir), "--logfile", ""]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_pong(port, proc)
        yield f"redis://{HOST}:{port}/0"
    finally:
        _stop(proc)


def _wait_pong(port: int, proc: subprocess.Popen[bytes], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection((HOST, port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        try:
            code = proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        raise ServerGone(f"redis-server exited with code {code} before it answered PING")
    raise ServerGone(f"redis-server did not answer PING within {within:.0f}s")
