"""The processes under test: uvicorn (the app or the floor) and a throwaway redis-server.

Each runs as a separate process on a free loopback port, pinned to the server CPUs when
pinning is on, logging into the run's temporary folder, and is always stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.client import HOST, ServerGone, wait_ready
from bench.pinning import Pinning

APP = "eventapi.app:app_from_env"
SLOW_APP = "bench.apps:slow_app"  # the app over a store with added latency
FLOOR = "bench.floor:app"
FACTORIES = {APP, SLOW_APP}  # served with --factory
LATENCY_ENV = "BENCH_STORE_LATENCY"  # seconds, read by bench.apps:slow_app
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


@contextlib.contextmanager
def uvicorn(
    target: str,
    env: dict[str, str],
    workdir: Path,
    pinning: Pinning,
    *,
    workers: int = 1,
    pin: bool = True,
) -> Iterator[int]:
    """Serve ``target`` (module:attr) with uvicorn; yields the port once /health answers."""
    port = free_port()
    cmd = [*(pinning.server_prefix() if pin else [])]
    cmd += [sys.executable, "-m", "uvicorn", target, "--host", HOST, "--port", str(port)]
    cmd += ["--no-access-log", "--log-level", "warning", "--workers", str(workers)]
    if target in FACTORIES:
        cmd.append("--factory")
    log = workdir / f"uvicorn-{port}.log"
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
        yield port
    finally:
        _stop(proc)


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
