"""Control-plane requests to a server under test (loopback only, stdlib http.client):
readiness, warm-up, single writes and /metrics counters."""

from __future__ import annotations

import contextlib
import http.client
import re
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass

HOST = "127.0.0.1"
_SAMPLE = re.compile(r"^(eventapi_\w+_total)\{([^}]*)\} ([0-9.eE+-]+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class ServerGone(RuntimeError):
    pass


def request(
    port: int, method: str, path: str, body: bytes = b"", timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen[bytes], within: float = 30.0) -> None:
    """Poll GET /health until 200 (bounded); fail early if the process exits."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(port, "GET", "/health", timeout=1.0)[0] == 200:
                return
        try:  # the pause between polls doubles as the "did it die?" check
            code = proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise ServerGone(f"the server exited with code {code} before it was ready")
    raise ServerGone(f"the server did not answer GET /health within {within:.0f}s")


def warm(port: int, paths: Iterable[str]) -> int:
    """GET each path once, in order; returns how many answered 200."""
    ok = 0
    conn = http.client.HTTPConnection(HOST, port, timeout=10.0)
    try:
        for path in paths:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            ok += resp.status == 200
    finally:
        conn.close()
    return ok


@dataclass(frozen=True)
class Counters:
    """The eventapi_*_total counters of one scrape of GET /metrics."""

    values: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Counters:
        values = {}
        for name, labels, value in _SAMPLE.findall(text):
            values[(name, frozenset(_LABEL.findall(labels)))] = float(value)
        return cls(values)

    def total(self, name: str, **labels: str) -> float:
        want = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and want <= ls)

    def store_reads(self) -> float:
        name = "eventapi_store_operations_total"
        return self.total(name, operation="get") + self.total(name, operation="list")

    def cache(self, route: str, outcome: str) -> float:
        return self.total("eventapi_cache_requests_total", route=route, outcome=outcome)


def scrape(port: int) -> Counters:
    status, _, body = request(port, "GET", "/metrics")
    if status != 200:
        raise ServerGone(f"GET /metrics answered {status}")
    return Counters.parse(body.decode())


@dataclass(frozen=True)
class Delta:
    """What the server counted between two scrapes."""

    store_reads: int
    hits: int
    lookups: int  # hits + misses + bypasses

    @classmethod
    def between(cls, before: Counters, after: Counters, route: str) -> Delta:
        def diff(outcome: str) -> float:
            return after.cache(route, outcome) - before.cache(route, outcome)

        hits = diff("hit")
        lookups = hits + diff("miss") + diff("bypass")
        return cls(round(after.store_reads() - before.store_reads()), round(hits), round(lookups))

    @property
    def hit_ratio(self) -> float | None:
        return self.hits / self.lookups if self.lookups else None
