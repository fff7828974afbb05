"""The bundled load generator: raw HTTP/1.1 keep-alive over asyncio streams (uvloop when
installed), C connections, for a duration or a request count.

Every connection sends one request at a time (no pipelining). A chooser callback picks
each request just before it is sent; an optional callback sees each response (status,
header block, body, start and end times), which is how the mixed workload checks for stale reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

from bench.http1 import IO_ERRORS, Request, read_response
from bench.stats import LoadResult

__all__ = ["Chooser", "LoadGenerator", "OnResponse", "Request", "run_load"]
CONNECT_WITHIN = 10.0  # seconds for one connection to open

Chooser = Callable[[], "Request | str"]
# Sees each response: request, status, header block, body, start and end (perf_counter_ns).
OnResponse = Callable[[Request, int, bytes, bytes, int, int], None]


class LoadGenerator:
    def __init__(
        self,
        port: int,
        choose: Chooser,
        *,
        connections: int = 64,
        duration: float | None = None,
        requests: int | None = None,
        on_response: OnResponse | None = None,
        time_limit: float = 120.0,
        host: str = "127.0.0.1",
        rate: float | None = None,
    ) -> None:
        if (duration is None) == (requests is None):
            raise ValueError("give exactly one of duration and requests")
        if rate is not None and (duration is None or rate <= 0):
            raise ValueError("a fixed rate needs a duration and a positive rate")
        # Open loop: request n is due at start + n / rate, whatever the answers before it,
        # and its latency counts from then: a server that falls behind is charged the
        # queueing its clients would see (no coordinated omission). The connections only
        # bound how many are in flight.
        self.rate = rate
        self._next = 0
        self._start_ns = 0
        self.host, self.port, self.choose = host, port, choose
        self.connections = connections
        self.duration, self.total = duration, requests
        self.on_response = on_response
        self.time_limit = time_limit if duration is None else duration + 30.0
        self._host_header = f"Host: {host}:{port}\r\n"
        self._raw_gets: dict[str, bytes] = {}
        self.latencies: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self._issued = 0
        self._deadline = 0.0

    def _raw(self, req: Request | str) -> tuple[Request, bytes]:
        if isinstance(req, str):
            req = Request("GET", req)
        if req.method == "GET" and not req.body:
            raw = self._raw_gets.get(req.path)
            if raw is None:
                raw = f"GET {req.path} HTTP/1.1\r\n{self._host_header}\r\n".encode()
                self._raw_gets[req.path] = raw
            return req, raw
        head = f"{req.method} {req.path} HTTP/1.1\r\n{self._host_header}"
        if req.body or req.method in {"POST", "PUT", "PATCH"}:
            head += f"Content-Type: application/json\r\nContent-Length: {len(req.body)}\r\n"
        return req, head.encode() + b"\r\n" + req.body

    def _more(self) -> bool:
        if self.rate is not None:  # the next request must be due before the deadline
            # Both sides in whole nanoseconds from the same start: the float deadline
            # (seconds) times 1e9 may exceed it by the start's rounding, one request more.
            due = self._start_ns + self._next * 1e9 / self.rate
            return due < self._start_ns + round((self.duration or 0.0) * 1e9)
        if self.total is None:
            return time.perf_counter() < self._deadline
        self._issued += 1
        return self._issued <= self.total

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(CONNECT_WITHIN):
            return await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    async def _worker(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        latencies, statuses, on_response = self.latencies, self.statuses, self.on_response
        try:
            while self._more():
                req, raw = self._raw(self.choose())
                if self.rate is None:
                    t0 = time.perf_counter_ns()
                else:
                    t0 = self._start_ns + int(self._next * 1e9 / self.rate)
                    self._next += 1
                    wait = (t0 - time.perf_counter_ns()) / 1e9
                    if wait > 0:
                        await asyncio.sleep(wait)
                try:
                    writer.write(raw)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status, body, close = await read_response(head, reader)
                except IO_ERRORS:
                    self.errors += 1
                    writer.close()
                    reader, writer = await self._connect()
                    continue
                t1 = time.perf_counter_ns()
                latencies.append(t1 - t0)
                statuses[status] += 1
                if on_response is not None:
                    on_response(req, status, head, body, t0, t1)
                if close:
                    writer.close()
                    reader, writer = await self._connect()
        finally:
            writer.close()
            with contextlib.suppress(*IO_ERRORS):
                await writer.wait_closed()

    async def run(self) -> LoadResult:
        """Open every connection, then drive them all; bounded by ``time_limit``."""
        conns = await asyncio.gather(
            *(self._connect() for _ in range(self.connections)), return_exceptions=True
        )
        opened = [c for c in conns if not isinstance(c, BaseException)]
        self.errors += len(conns) - len(opened)
        started = time.perf_counter()
        self._start_ns = int(started * 1e9)
        self._deadline = started + (self.duration or 0.0)
        tasks = [asyncio.create_task(self._worker(r, w)) for r, w in opened]
        try:
            async with asyncio.timeout(self.time_limit):
                results = await asyncio.gather(*tasks, return_exceptions=True)
            self.errors += sum(isinstance(r, Exception) for r in results)
        except TimeoutError:
            self.errors += sum(not t.done() for t in tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - started
        return LoadResult.from_samples(
            "python", len(opened), elapsed, self.latencies, self.statuses, self.errors
        )


def run_load(generator: LoadGenerator) -> LoadResult:
    """Run ``generator`` in a fresh event loop (uvloop when it is installed)."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(generator.run())
