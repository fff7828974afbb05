"""`python -m bench.follow`: what following the events costs (issue 20).

1. **Catch-up.** EVENTS generated events (bench/seed.py; random order, JSON Lines with ids)
   are imported with `eventapi import` into a new SQLite file, which writes one change
   record per event. `eventapi serve` (its defaults: in-process cache) serves it; one
   client, on one kept-alive connection, reads GET /api/changes from the start with
   limit=1000, following `next` until `more` is false. Measured: the seconds from the first
   request to the last answer, and changes a second; checked: exactly EVENTS changes, with
   EVENTS distinct event ids.
2. **Streams.** Two `eventapi serve` processes on that database (both with their
   defaults): the first serves the streams, the second takes the writes, so every change
   crosses processes (through the change log). Another process (one asyncio event loop,
   raw sockets) opens STREAMS GET /api/changes/stream connections to the first, 5 from each
   of STREAMS/5 loopback addresses (the default EVENTAPI_STREAMS_PER_CLIENT is 5; the
   loopback interface takes any 127.x.y.z), and waits until every one has its response
   head. Then this process writes through the second server at RATE writes a second for
   SECONDS seconds, one at a time on one kept-alive connection, alternately a POST (a new
   event) and a PATCH (of an imported event no other write touches), so each write is one
   change with its own (event id, kind), and records when each write's answer arrived.
   Each stream records when each change (its `data:`'s id and kind) arrived. Once the
   writes are done, the streams are read until every one has a change for every write, or
   SETTLE more seconds pass; then they are closed. Measured: the delivery latency, a
   change's arrival on a stream minus its write's answer (time.monotonic(), one clock for
   every process), over every (stream, write) pair: p50, p99, max; how many pairs never
   arrived (missed); and the first server's resident memory (VmRSS) and open files
   (/proc/PID/fd): before the streams, with them open (before the writes, and after), and
   2 s after they were closed.

The servers run on the first CPU, this process and the stream reader on the others (as
bench.scale pins them). `--out` writes the Markdown report to a file; `--docs FILE`
replaces the part of FILE between BEGIN and END (docs/benchmarks.md's issue 20 section)
with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from bench.client import HOST
from bench.scale import CLIENT_CPUS, open_files, p, run_import, serve, write_events
from bench.server import app_env

EVENTS = 100_000
PAGE = 1000  # the feed's largest page (follow/feed.py's MAX_LIMIT)
STREAMS = 1000
PER_ADDRESS = 5  # streams from one address: the default EVENTAPI_STREAMS_PER_CLIENT
RATE = 20.0  # writes a second
SECONDS = 15.0
SETTLE = 10.0  # the most seconds the streams are read for once the writes are done
TARGET = 1.0  # seconds: issue 20's "reaches every stream within 1 s (p99)"
BEGIN = (
    "<!-- python -m bench.follow --docs docs/benchmarks.md: begin (it replaces everything up to"
    " the end marker) -->"
)
END = "<!-- python -m bench.follow: end -->"


@dataclass(frozen=True)
class Lengths:
    events: int = EVENTS
    streams: int = STREAMS
    rate: float = RATE
    seconds: float = SECONDS
    settle: float = SETTLE


# --- HTTP on one kept-alive connection --------------------------------------------------


class Connection:
    """One kept-alive connection to a server on this machine."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self._conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """(status, body) of one request; ``body`` is sent as JSON."""
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self._conn.request(method, path, body=data, headers=headers)
        response = self._conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._conn.close()


# --- 1. catch-up ------------------------------------------------------------------------


@dataclass(frozen=True)
class CatchUp:
    seconds: float
    pages: int
    changes: int
    distinct_ids: int


def catch_up(port: int) -> CatchUp:
    """GET /api/changes from the start, PAGE at a time, following ``next`` until ``more`` is
    false."""
    conn = Connection(port)
    ids: set[str] = set()
    changes = pages = 0
    path = f"/api/changes?limit={PAGE}"
    started = time.perf_counter()
    try:
        while True:
            status, body = conn.call("GET", path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
            page = orjson.loads(body)
            pages += 1
            changes += len(page["changes"])
            ids.update(change["id"] for change in page["changes"])
            if not page["more"]:
                break
            path = f"/api/changes?limit={PAGE}&after={page['next']}"
    finally:
        conn.close()
    return CatchUp(time.perf_counter() - started, pages, changes, len(ids))


# --- 2. streams: the reader process -----------------------------------------------------

Key = tuple[str, str]  # (event id, kind): one change of this benchmark's writes
Arrival = tuple[str, str, float]  # (event id, kind, time.monotonic() it arrived)
REQUEST = b"GET /api/changes/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"


def source_address(n: int) -> str:
    """The loopback address stream ``n`` connects from (PER_ADDRESS streams each)."""
    address = n // PER_ADDRESS
    return f"127.0.{10 + address // 250}.{address % 250 + 1}"


class Stream(asyncio.Protocol):
    """One GET /api/changes/stream: its head, then its chunked body read as Server-Sent
    Events; each change's (id, kind) with the time.monotonic() its last byte arrived."""

    def __init__(self) -> None:
        self.head: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.arrived: list[Arrival] = []
        self.lost = False
        self.transport: asyncio.Transport | None = None
        self._raw = b""  # received, not yet de-chunked
        self._events = b""  # de-chunked, not yet a whole event

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(REQUEST)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.head.done():
            self.head.set_result(0)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self._raw += data
        if not self.head.done():
            end = self._raw.find(b"\r\n\r\n")
            if end < 0:
                return
            status = int(self._raw.split(b" ", 2)[1])
            self._raw = self._raw[end + 4 :]
            self.head.set_result(status)
        self._dechunk()
        while (end := self._events.find(b"\n\n")) >= 0:
            event, self._events = self._events[: end + 2], self._events[end + 2 :]
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    change = orjson.loads(line[6:])
                    self.arrived.append((change["id"], change["kind"], now))

    def _dechunk(self) -> None:
        while (end := self._raw.find(b"\r\n")) >= 0:
            size = int(self._raw[:end].split(b";")[0], 16)
            if len(self._raw) < end + 2 + size + 2:
                return
            self._events += self._raw[end + 2 : end + 2 + size]
            self._raw = self._raw[end + 2 + size + 2 :]


async def open_streams(port: int, count: int) -> list[Stream]:
    """``count`` streams, opened 100 at a time; returns once every one has its head (a
    RuntimeError if any is not a 200)."""
    loop = asyncio.get_running_loop()
    streams: list[Stream] = []
    for first in range(0, count, 100):
        batch = []
        for n in range(first, min(first + 100, count)):
            _, stream = await loop.create_connection(
                Stream, HOST, port, local_addr=(source_address(n), 0)
            )
            batch.append(stream)
        statuses = await asyncio.wait_for(asyncio.gather(*(s.head for s in batch)), 60)
        if any(status != 200 for status in statuses):
            raise RuntimeError(f"streams answered {sorted(set(statuses))}, not 200")
        streams += batch
    return streams


async def follow_streams(port: int, count: int, settle: float, control: Any, results: Any) -> None:
    streams = await open_streams(port, count)
    results.put(("ready", count))
    loop = asyncio.get_running_loop()
    writes: int = await loop.run_in_executor(None, control.get)  # the writes are done
    for _ in range(round(settle / 0.05)):  # until each has them all, or SETTLE passed
        if all(len(s.arrived) >= writes or s.lost for s in streams):
            break
        await asyncio.sleep(0.05)
    results.put(("read", None))
    await loop.run_in_executor(None, control.get)  # measured with the streams open: close
    lost = sum(s.lost for s in streams)
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()
    results.put(("done", [s.arrived for s in streams], lost))


def reader(port: int, count: int, settle: float, control: Any, results: Any) -> None:
    """The stream reader process: ``count`` streams on one event loop (uvloop if there)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 256)), hard))
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with contextlib.suppress(ImportError):  # uvloop comes with uvicorn[standard]
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(follow_streams(port, count, settle, control, results))
    except Exception as exc:
        results.put(("failed", repr(exc)))


@contextlib.contextmanager
def stream_reader(port: int, lengths: Lengths) -> Iterator[tuple[Any, Any]]:
    """The reader process, once every stream has its head; yields its (control, results)
    queues: put the number of writes into control, get ("read", None) once the streams
    had them (or SETTLE passed), put "close", then get ("done", arrivals, lost)."""
    context = multiprocessing.get_context("spawn")
    control, results = context.Queue(), context.Queue()
    proc = context.Process(
        target=reader, args=(port, lengths.streams, lengths.settle, control, results)
    )
    proc.start()
    try:
        got = results.get(timeout=180)
        if got[0] != "ready":
            raise RuntimeError(f"the stream reader failed: {got[1]}")
        yield control, results
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()


# --- 2. streams: the writes and the measurements ----------------------------------------


@dataclass(frozen=True)
class Write:
    key: Key
    status: int
    acked: float  # time.monotonic() when its answer had arrived
    ms: float


def write_steadily(port: int, ids: list[str], rate: float, seconds: float) -> list[Write]:
    """rate x seconds writes, one at a time, on schedule: POSTs and PATCHes in turn, each
    PATCH of an event of ``ids`` no other write touches."""
    conn = Connection(port)
    targets = iter(ids)
    writes: list[Write] = []
    interval = 1.0 / rate
    due = time.monotonic()
    try:
        for n in range(round(rate * seconds)):
            time.sleep(max(0.0, due - time.monotonic()))
            due += interval
            sent = time.monotonic()
            if n % 2 == 0:
                event = {"title": f"Followed write {n}", "date": "2026-05-01T10:00:00"}
                status, body = conn.call("POST", "/api/events", event)
                key = (orjson.loads(body)["id"] if status == 201 else f"failed {n}", "created")
            else:
                target = next(targets)
                status, _ = conn.call("PATCH", f"/api/events/{target}", {"title": f"Patch {n}"})
                key = (target, "updated")
            acked = time.monotonic()
            writes.append(Write(key, status, acked, (acked - sent) * 1000))
    finally:
        conn.close()
    return writes


def memory_kib(pid: int) -> int:
    """VmRSS of a running process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass(frozen=True)
class Resources:
    rss_mib: float
    open_files: int


def resources(pid: int) -> Resources:
    return Resources(memory_kib(pid) / 1024, open_files(pid))


@dataclass(frozen=True)
class StreamsResult:
    streams: int
    writes: list[Write]
    latencies: list[float]  # seconds, one per (stream, write) pair that arrived
    missed: int  # (stream, write) pairs that never arrived
    lost: int  # streams the server closed before the end
    before: Resources
    opened: Resources
    written: Resources
    after: Resources


def delivery(writes: list[Write], arrivals: list[list[Arrival]]) -> tuple[list[float], int]:
    """(latencies, missed): each stream's first arrival of each write's change minus the
    write's answer."""
    latencies: list[float] = []
    missed = 0
    for arrived in arrivals:
        first: dict[Key, float] = {}
        for event_id, kind, at in arrived:
            first.setdefault((event_id, kind), at)
        for write in writes:
            if write.key in first:
                latencies.append(first[write.key] - write.acked)
            else:
                missed += 1
    return latencies, missed


def streams_run(db: Path, ids: list[str], workdir: Path, lengths: Lengths) -> StreamsResult:
    env = app_env(db, "memory://")
    with serve(env, workdir) as (port, pid), serve(env, workdir) as (write_port, _):
        before = resources(pid)
        with stream_reader(port, lengths) as (control, results):
            opened = resources(pid)
            writes = write_steadily(write_port, ids, lengths.rate, lengths.seconds)
            control.put(len(writes))
            read = results.get(timeout=lengths.settle + 120)
            written = resources(pid)
            control.put("close")
            got = read if read[0] != "read" else results.get(timeout=120)
        if got[0] != "done":
            raise RuntimeError(f"the stream reader failed: {got[1]}")
        _, arrivals, lost = got
        time.sleep(2.0)
        after = resources(pid)
    failed = [w for w in writes if w.status not in (200, 201)]
    if failed:
        raise RuntimeError(f"{len(failed)} writes failed, the first {failed[0]}")
    latencies, missed = delivery(writes, arrivals)
    return StreamsResult(
        lengths.streams, writes, latencies, missed, lost, before, opened, written, after
    )


# --- report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds == seconds else "none"


def report(
    lengths: Lengths, load: float, imported_s: float, caught: CatchUp, run: StreamsResult
) -> str:
    lines = [
        f"Written by `python -m bench.follow` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}"
        f" UTC (load average over the minute before it: {load:.2f}).",
        "",
        f"#### Catch-up: GET /api/changes from the start, limit={PAGE} "
        f"({lengths.events:,} events imported in {imported_s:.1f} s)",
        "",
        "| changes | distinct event ids | pages | time | changes/s |",
        "|---:|---:|---:|---:|---:|",
        f"| {caught.changes:,} | {caught.distinct_ids:,} | {caught.pages:,} | "
        f"{caught.seconds:.1f} s | {caught.changes / caught.seconds:,.0f} |",
        "",
        f"#### {run.streams:,} streams on one process, writes through another "
        f"({lengths.rate:g} a second for {lengths.seconds:g} s, POST and PATCH in turn)",
        "",
    ]
    pairs = len(run.writes) * run.streams
    latencies = sorted(run.latencies)
    write_ms = [w.ms for w in run.writes]
    lines += [
        "| writes | (stream, change) pairs | arrived | missed | latency p50 | p99 | max |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(run.writes):,} | {pairs:,} | {len(latencies):,} | {run.missed:,} | "
        f"{ms(p(latencies, 0.5))} | {ms(p(latencies, 0.99))} | "
        f"{ms(max(latencies, default=float('nan')))} |",
        "",
        "Latency: a change's arrival on a stream minus the answer to its write "
        f"(the least: {ms(min(latencies, default=float('nan')))}). The writes took p50 "
        f"{p(write_ms, 0.5):.1f} ms, p99 {p(write_ms, 0.99):.1f} ms; "
        f"{run.lost} streams were closed by the server before the end.",
        "",
        "| the streams' server | resident memory (VmRSS) | open files |",
        "|---|---:|---:|",
    ]
    for name, got in (
        ("before the streams", run.before),
        (f"{run.streams:,} streams open, before the writes", run.opened),
        (f"{run.streams:,} streams open, after the writes", run.written),
        ("2 s after they were closed", run.after),
    ):
        lines.append(f"| {name} | {got.rss_mib:.0f} MiB | {got.open_files:,} |")
    met = run.missed == 0 and p(latencies, 0.99) <= TARGET
    lines += [
        "",
        f"Target (issue 20): a change made through any process reaches every stream within "
        f"{TARGET:g} s (p99), none missed: {'met' if met else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"


def into_docs(path: Path, text: str) -> None:
    """Replace what ``path`` holds between BEGIN and END with ``text``."""
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path} has no {BEGIN!r} ... {END!r} block to replace")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")


def run(workdir: Path, lengths: Lengths) -> str:
    load = os.getloadavg()[0]
    db, source = workdir / "follow.db", workdir / "follow.jsonl"
    print(f"follow: importing {lengths.events:,} events", file=sys.stderr, flush=True)
    for old in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        old.unlink(missing_ok=True)  # a new database, even in a --workdir used before
    ids = write_events(source, lengths.events)
    imported = run_import(source, db, workdir)
    source.unlink()
    if round(lengths.rate * lengths.seconds) // 2 > len(ids):
        raise SystemExit("more PATCHes than imported events: lower --rate or --seconds")
    print("follow: catching up", file=sys.stderr, flush=True)
    with serve(app_env(db, "memory://"), workdir) as (port, _):
        caught = catch_up(port)
    if caught.changes != lengths.events or caught.distinct_ids != lengths.events:
        raise RuntimeError(f"the feed gave {caught}, not {lengths.events:,} distinct changes")
    print(f"follow: {lengths.streams:,} streams", file=sys.stderr, flush=True)
    streamed = streams_run(db, ids, workdir, lengths)
    return report(lengths, load, imported.seconds, caught, streamed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.follow", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=EVENTS, help="events imported")
    parser.add_argument("--streams", type=int, default=STREAMS, help="streams open at once")
    parser.add_argument("--rate", type=float, default=RATE, help="writes a second")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="seconds of writes")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where files go (default: a temporary folder)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write the Markdown here (default: stdout)"
    )
    parser.add_argument(
        "--docs", type=Path, default=None, help="also put it into this file's marked block"
    )
    opts = parser.parse_args(argv)
    lengths = Lengths(opts.events, opts.streams, opts.rate, opts.seconds)
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    with contextlib.ExitStack() as stack:
        if opts.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-follow-")))
        else:
            workdir = opts.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        text = run(workdir, lengths)
    if opts.out is None:
        sys.stdout.write(text)
    else:
        opts.out.write_text(text)
    if opts.docs is not None:
        into_docs(opts.docs, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
