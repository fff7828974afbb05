"""Run the project's real commands as subprocesses, with settings that stay in tmp_path."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support.redis_server import free_port as free_port  # re-exported: tests/multiprocess

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the project venv's python when run via .venv/bin/pytest
EVENTAPI = str(Path(sys.executable).with_name("eventapi"))
MAIN = str(ROOT / "main.py")
SEED_DB = str(ROOT / "seed_db.py")
READY_WITHIN = 15.0  # seconds for `python main.py` to answer GET /health
STOP_WITHIN = 10.0  # seconds for it to exit after SIGINT / SIGTERM


def clean_env(**settings: str) -> dict[str, str]:
    """The current environment without any EVENTAPI_* variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTAPI_")}
    env.update(settings)
    return env


def run(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=20,
        check=False,
    )


def read_until(stream: IO[bytes], marker: bytes, within: float = 15.0) -> bytes:
    """Read a child's output pipe until ``marker`` shows up, failing after ``within`` seconds."""
    seen = b""
    deadline = time.monotonic() + within
    while marker not in seen:
        ready, _, _ = select.select([stream], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(stream.fileno(), 4096) if ready else b""
        if not chunk:
            pytest.fail(f"no {marker!r} within {within}s; output so far: {seen!r}")
        seen += chunk
    return seen


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
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Poll GET /health until it answers 200; fail early if the process dies."""
        deadline = time.monotonic() + READY_WITHIN
        with httpx.Client(base_url=self.url, timeout=1.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                try:
                    if http.get("/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                try:  # the pause between retries doubles as the "did it die?" check
                    code = self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                pytest.fail(f"server exited with {code} before it was ready:\n{self.output()}")
        pytest.fail(f"server not ready within {READY_WITHIN}s:\n{self.output()}")

    def wait_for_line(self, marker: str, within: float = 5.0) -> str:
        """The first output line with ``marker``, polling the log until it is written."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if marker in line:
                    return line
            time.sleep(0.02)
        pytest.fail(f"no line with {marker!r} within {within}s:\n{self.output()}")

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=STOP_WITHIN)


@contextmanager
def main_py(
    env: Mapping[str, str], cwd: Path, url: str, python: str = PYTHON, main: str = MAIN
) -> Iterator[Server]:
    """`python main.py` running in the background; killed at the end if still alive."""
    log = cwd / "server.log"
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            [python, main],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        ) as proc,
    ):
        try:
            yield Server(proc, url, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=STOP_WITHIN)
