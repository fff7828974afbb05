"""Throwaway redis-server processes on free ports, so tests can kill, pause and restart them
without touching anybody else's Redis."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

import hiredis

from tests.support.poll import eventually_sync

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    def __init__(
        self, workdir: Path, port: int | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.port = port or free_port()
        self.workdir = workdir
        self.extra_args = list(extra_args)  # more redis-server options (e.g. cluster mode)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        self._proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                "",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        # Readiness of a separate process: poll until it answers PING (bounded).
        def answers() -> bool:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                # (NOAUTH: up, and started with --requirepass)
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
            return False

        eventually_sync(answers, f"redis-server on port {self.port} answering PING", within=timeout)

    def command(self, *args: str) -> bytes:
        """One raw command on a fresh connection (works while clients are paused)."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload)
            return _whole_reply(sock)

    @property
    def running(self) -> bool:
        """Started and not killed since (it may be frozen)."""
        return self._proc is not None

    def kill(self) -> None:
        """SIGKILL: connections drop, data is gone (no persistence)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a blackhole)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self._proc is not None:
            self.thaw()
            self.kill()


def _whole_reply(sock: socket.socket) -> bytes:
    """The raw bytes of one complete RESP reply, however many reads it takes (KEYS * on a
    busy node is larger than one read)."""
    reader = hiredis.Reader()
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the connection closed after {len(raw)} bytes of a reply")
        raw += chunk
        reader.feed(chunk)
        if reader.gets() is not False:
            return raw
