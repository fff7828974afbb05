"""The one server launcher: the product's real commands as processes, started the way a user
starts them (`eventapi serve`, `python main.py`, `eventapi seed`, ...).

Every server is started in a session of its own (so a `--workers` master and its workers
can be killed as one group), writes its output to a log file in the test's folder, and is
SIGKILLed at the end of the test whatever happened. Settings reach it as environment
variables (tests/support/settings.py: ``server_env``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support.poll import NotYet, eventually_sync
from tests.support.redis_server import free_port as free_port  # re-exported

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the project venv's python when run via .venv/bin/pytest
EVENTAPI = str(Path(sys.executable).with_name("eventapi"))
MAIN = str(ROOT / "main.py")
SEED_DB = str(ROOT / "seed_db.py")
READY_WITHIN = 15.0  # seconds for a server to answer GET /health
STOP_WITHIN = 10.0  # seconds for it to exit after SIGINT / SIGTERM
RUN_WITHIN = 20.0  # seconds for a one-off command (`eventapi seed`, ...) to finish


def run(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A one-off command, run to its end; its output captured."""
    return subprocess.run(
        list(args),
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=RUN_WITHIN,
        check=False,
    )


def read_until(stream: IO[bytes], marker: bytes, within: float = 15.0) -> bytes:
    """Read a child's output pipe until ``marker`` shows up, failing after ``within`` seconds
    (or at once if the pipe closes first)."""
    seen = bytearray()

    def arrived() -> bool:
        ready, _, _ = select.select([stream], [], [], 0.05)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                pytest.fail(f"output closed before {marker!r}; output so far: {bytes(seen)!r}")
            seen.extend(chunk)
        return marker in seen

    try:
        eventually_sync(arrived, f"{marker!r} on the output", within=within, step=0)
    except NotYet:
        pytest.fail(f"no {marker!r} within {within}s; output so far: {bytes(seen)!r}")
    return bytes(seen)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Server:
    """One server process started by ``serve`` or ``main_py``, and where it listens."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _alive(self, waiting_for: str) -> None:
        code = self.proc.poll()
        if code is not None:
            pytest.fail(f"server exited with {code} before {waiting_for}:\n{self.output()}")

    def wait_ready(self, within: float = READY_WITHIN) -> None:
        """Poll GET /health until it answers 200; fail early if the process dies."""
        with httpx.Client(base_url=self.url, timeout=1.0, trust_env=False) as http:

            def ready() -> bool:
                self._alive("it was ready")
                try:
                    return http.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            try:
                eventually_sync(ready, "GET /health answering 200", within=within, step=0.05)
            except NotYet:
                pytest.fail(f"server not ready within {within}s:\n{self.output()}")

    def wait_for_line(self, marker: str, within: float = 5.0) -> str:
        """The first output line with ``marker``, polling the log until it is written."""

        def line() -> str:
            return next((x for x in self.output().splitlines() if marker in x), "")

        try:
            return eventually_sync(line, f"a line with {marker!r}", within=within, step=0.02)
        except NotYet:
            pytest.fail(f"no line with {marker!r} within {within}s:\n{self.output()}")

    def stop(self, sig: int) -> int:
        """Send ``sig`` (SIGINT: Ctrl-C, SIGTERM) to the server; its exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=STOP_WITHIN)

    def kill(self) -> None:
        """SIGKILL the server (and its workers) in the middle of a test."""
        if self.proc.returncode is None:  # not reaped yet: its group id is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_WITHIN)


@contextmanager
def launch(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, url: str, log: Path
) -> Iterator[Server]:
    """``args`` running in the background in a session of its own, its output in ``log``;
    its whole process group SIGKILLed on exit. Not waited for: call ``wait_ready()``."""
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as proc,
    ):
        server = Server(proc, url, log)
        try:
            yield server
        finally:
            server.kill()


@contextmanager
def serve(workdir: Path, name: str, env: Mapping[str, str], workers: int = 1) -> Iterator[Server]:
    """`eventapi serve` on a free port, log ``workdir/server-{name}.log``."""
    port = free_port()
    args = [EVENTAPI, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    with launch(args, env, workdir, url, workdir / f"server-{name}.log") as server:
        yield server


@contextmanager
def main_py(
    env: Mapping[str, str], cwd: Path, url: str, python: str = PYTHON, main: str = MAIN
) -> Iterator[Server]:
    """`python main.py` (which listens where ``env`` says: ``url``), log ``cwd/server.log``."""
    with launch([python, main], env, cwd, url, cwd / "server.log") as server:
        yield server


def kill(server: Server) -> None:
    """SIGKILL one server (and its workers) in the middle of a test."""
    server.kill()


@contextmanager
def cluster(
    workdir: Path,
    env: Mapping[str, str],
    names: Sequence[str] = ("A", "B"),
    workers: int = 1,
    *,
    at_once: bool = False,
) -> Iterator[list[Server]]:
    """Several `eventapi serve` with one environment, each polled until ready.

    By default the first is ready before the others start, so a race between processes
    creating the same new database file cannot fail a scenario about something else;
    ``at_once`` starts them all together (a test of its own covers that race).
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

    def started() -> int:
        server._alive(f"{count} workers started")
        return sum(_has_open(child, file) for child in _children(server.proc.pid))

    eventually_sync(
        started, f"{count} workers started", within=within, step=0.02, until=lambda n: n >= count
    )
