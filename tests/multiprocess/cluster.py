"""Real `eventapi serve` processes sharing one SQLite file and one throwaway redis-server.

Each process is started with the console script exactly as a user would, in its own
session (so a `--workers` master and its workers can be killed as one group), and is
SIGKILLed at the end of the test whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.helpers import EVENTAPI, STOP_WITHIN, Server, clean_env, free_port

BREAKER_GAUGE = "eventapi_cache_breaker_open"
STORE_OPERATIONS = "eventapi_store_operations_total"


def server_env(db: Path, cache_url: str, **settings: float | str) -> dict[str, str]:
    """The environment of one `eventapi serve`: no inherited EVENTAPI_* variable, the shared
    database and cache, quiet logs, and ``settings`` (``store_timeout=1`` ->
    ``EVENTAPI_STORE_TIMEOUT=1``)."""
    env = clean_env(
        EVENTAPI_DATABASE_URL=f"sqlite:///{db.resolve()}",  # four slashes: absolute path
        EVENTAPI_CACHE_URL=cache_url,
        EVENTAPI_LOG_LEVEL="warning",
        # The load of these tests stands for many clients, all from 127.0.0.1, and they
        # judge what reads return, not how many are admitted (tests/api/test_admission.py).
        EVENTAPI_LIST_QUERIES_PER_PROCESS="1000",
        EVENTAPI_LIST_QUERIES_PER_CLIENT="1000",
    )
    env.update({f"EVENTAPI_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:  # not reaped yet, so its group id is still the one we made
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=STOP_WITHIN)


@contextmanager
def serve(workdir: Path, name: str, env: Mapping[str, str], workers: int = 1) -> Iterator[Server]:
    """`eventapi serve` on a free port in the background; its whole process group is
    SIGKILLed on exit. Not waited for: call ``wait_ready()``."""
    port = free_port()
    args = [EVENTAPI, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    log = workdir / f"server-{name}.log"
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            args,
            env=dict(env),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as proc,
    ):
        try:
            yield Server(proc, f"http://127.0.0.1:{port}", log)
        finally:
            _kill_group(proc)


def kill(server: Server) -> None:
    """SIGKILL one server (and its workers) in the middle of a test."""
    _kill_group(server.proc)


@contextmanager
def cluster(
    workdir: Path,
    env: Mapping[str, str],
    names: Sequence[str] = ("A", "B"),
    workers: int = 1,
    *,
    at_once: bool = False,
) -> Iterator[list[Server]]:
    """Several servers with one environment, each polled until ready.

    By default the first is ready before the others start, so a race between processes
    creating the same new database file cannot fail a scenario about something else;
    ``at_once`` starts them all together (test_startup.py covers that race on its own).
    """
    with ExitStack() as stack:
        servers: list[Server] = []
        for n, name in enumerate(names):
            servers.append(stack.enter_context(serve(workdir, name, env, workers)))
            if n == 0 and not at_once:
                servers[0].wait_ready()
        for server in servers:
            server.wait_ready()
        yield servers


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(p) for p in path.read_text().split()]
    return []


def _has_open(pid: int, file: Path) -> bool:
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if Path(os.readlink(fd)) == file:
                    return True
    return False


def wait_for_workers(server: Server, db: Path, count: int, within: float = 15.0) -> None:
    """Poll until ``count`` worker processes of a `--workers` server have opened the
    database (their start-up is done; Linux /proc): /health answers as soon as the first
    one is up, and traffic sent before the second is up all goes to the first."""
    file = db.resolve()
    deadline = time.monotonic() + within
    while sum(_has_open(child, file) for child in _children(server.proc.pid)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} workers did not start within {within}s")
        try:  # the pause between polls doubles as the "did it die?" check
            code = server.proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"server exited with {code}:\n{server.output()}")


@dataclass(frozen=True)
class Api:
    """One server process (or one connection pool to it) as the tests address it."""

    name: str
    http: httpx.AsyncClient


@asynccontextmanager
async def clients(
    servers: Sequence[Server], names: Sequence[str] = (), keepalive: int = 200
) -> AsyncIterator[list[Api]]:
    """One AsyncClient per server, never through a proxy, with room for many connections.
    A small ``keepalive`` makes the client keep opening new connections, so that a
    `--workers` server's kernel-side accept spreads them over every worker."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=keepalive)
    async with contextlib.AsyncExitStack() as stack:
        apis = []
        for n, server in enumerate(servers):
            http = httpx.AsyncClient(
                base_url=server.url, trust_env=False, limits=limits, timeout=15.0
            )
            await stack.enter_async_context(http)
            apis.append(Api(names[n] if names else "ABCDEFGH"[n], http))
        yield apis


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(api: Api) -> Samples:
    response = await api.http.get("/metrics")
    assert response.status_code == 200, response.text
    return parse_metrics(response.text)


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, within: float, step: float = 0.01
) -> float:
    """Poll the async predicate ``check()`` until it is true; returns when (monotonic).
    A bounded wait for another process, not a sleep standing in for synchronisation."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(step)
