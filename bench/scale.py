"""`python -m bench.scale`: what the size of the catalogue costs, what an attack costs
everyone else, and what a flood of idle connections costs (issue 17).

1. **Scale.** For each size (10k, 100k, 1M events by default): generated events (bench/seed.py)
   in random order, as JSON Lines, are imported with `eventapi import` into a new SQLite
   file (time, peak RSS and bytes written, from the child's rusage); then `eventapi serve`,
   cache off, answers each kind of request REPEATS times, one at a time on one kept-alive
   connection (after 2 unmeasured): an item GET, the first page, each filter, each sort,
   `q=` (a common word, and a word no event holds), a page half-way in by offset, and the
   page after the event half-way in by cursor (issue 20: the cursor is the one the API
   hands out, read once, unmeasured, from the rel="next" link of `?limit=1&offset=N/2-1`;
   the measured GETs are of that link with the default page size). The report gives the
   cursor page's p50 against the first page's, at each size.
2. **Attack**, on the largest database, `eventapi serve` with its defaults (in-process cache,
   admission limits): probes at fixed rates (uncached item GETs of ids never read, PATCHes,
   `/health`, a cached item GET), each from its own address, first alone, then while 8
   attackers (8 more addresses, in another process) send unique expensive list queries
   (`q=` of 2 letters reads every event, a random offset, by title) as fast as each
   connection allows, then alone again. How long the server stays busy after the attack
   stops is read from its CPU time (/proc/PID/stat).
3. **Connection flood**, on the smallest database, `eventapi serve` with
   EVENTAPI_MAX_CONNECTIONS=1000 and 5 s head and body time-outs: 2,000 connections that
   send half a request head or a head without its body. Measured: the server's open files
   (/proc/PID/fd), how a new connection is answered meanwhile, when the server closed the
   2,000, and a probe GET afterwards.

The loopback interface takes any 127.x.y.z as a source address, so each client is a
separate address, as the admission limits see clients.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.client import HOST, wait_ready
from bench.seed import generate
from bench.server import app_env, eventapi_command, free_port
from bench.stats import percentile

SIZES = (10_000, 100_000, 1_000_000)
COMMON, ABSENT = "festival", "zqxjv"
ATTACKERS = 8
TICKS = os.sysconf("SC_CLK_TCK")
# The server on the first CPU, this process, its clients and imports on the others (as the
# main benchmark pins them): the attackers' own work does not slow the server down.
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = set(_CPUS[:1]) if len(_CPUS) > 1 else set()
CLIENT_CPUS = set(_CPUS[1:]) if len(_CPUS) > 1 else set()


@dataclass(frozen=True)
class Lengths:
    repeats: int = 30  # measured requests of each kind
    phases: tuple[tuple[str, float], ...] = (("before", 5.0), ("attack", 10.0), ("after", 5.0))
    flood: int = 2_000
    flood_cap: int = 1_000
    flood_timeout: float = 5.0


QUICK = Lengths(
    repeats=5,
    phases=(("before", 1.0), ("attack", 2.0), ("after", 1.0)),
    flood=100,
    flood_cap=50,
    flood_timeout=1.0,
)


# --- processes --------------------------------------------------------------------------


def script() -> str:
    return eventapi_command(0)[0]


@dataclass(frozen=True)
class Imported:
    seconds: float
    rss_mib: float
    written_mib: float
    db_mib: float


def write_events(path: Path, count: int) -> list[str]:
    """``count`` generated events in random order, as JSON Lines; returns their ids."""
    events = generate(count)
    random.Random(count).shuffle(events)
    with path.open("wb") as out:
        for event in events:
            out.write(orjson.dumps(event.model_dump(mode="json")) + b"\n")
    return [event.id for event in events]


def run_import(source: Path, db: Path, workdir: Path) -> Imported:
    """``eventapi import``: its time, the bytes it wrote (its rusage) and its peak RSS. The
    rusage's peak RSS would be this process's (Linux keeps the pre-exec memory's peak, and
    this process holds the generated events), so VmHWM, the peak of the program's own
    memory, is read from /proc while it runs."""
    env = app_env(db, "none")
    started = time.perf_counter()
    peak = 0
    with (workdir / "import.log").open("ab") as log:
        proc = subprocess.Popen([script(), "import", str(source)], env=env, stdout=log, stderr=log)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, high_water_kib(proc.pid))
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"eventapi import failed; see {workdir / 'import.log'}")
    written = usage.ru_oublock * 512 / 2**20
    return Imported(seconds, peak / 1024, written, db.stat().st_size / 2**20)


def high_water_kib(pid: int) -> int:
    """VmHWM of a running process (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def serve(env: dict[str, str], workdir: Path) -> Iterator[tuple[int, int]]:
    """``eventapi serve`` as the README runs it; yields (port, pid) once it answers."""
    port = free_port()
    with (workdir / f"server-{port}.log").open("ab") as log:
        proc = subprocess.Popen(
            eventapi_command(port), env=env, cwd=workdir, stdout=log, stderr=log
        )
    try:
        if SERVER_CPUS:
            os.sched_setaffinity(proc.pid, SERVER_CPUS)
        wait_ready(port, proc, within=300.0)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- clients ----------------------------------------------------------------------------


class Client:
    """One kept-alive connection from ``source``; a broken one is opened again."""

    def __init__(self, port: int, source: str = HOST, timeout: float = 30.0) -> None:
        self._args = (HOST, port)
        self._source = source
        self._timeout = timeout
        self._conn = self._open()

    def _open(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            *self._args, timeout=self._timeout, source_address=(self._source, 0)
        )

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
        """(status, milliseconds); status 0 when the connection failed."""
        headers = {"Content-Type": "application/json"} if body else {}
        started = time.perf_counter()
        try:
            self._conn.request(method, path, body=body, headers=headers)
            response = self._conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self._conn.close()
            self._conn = self._open()
            status = 0
        return status, (time.perf_counter() - started) * 1000

    def head_of(self, method: str, path: str) -> tuple[int, dict[str, str]]:
        """(status, headers with lowercase names) of one request, its body read."""
        self._conn.request(method, path)
        response = self._conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}

    def close(self) -> None:
        self._conn.close()


def p(values: list[float], fraction: float) -> float:
    return percentile(sorted(values), fraction) if values else float("nan")


# --- 1. scale ---------------------------------------------------------------------------


DEEP_CURSOR = "cursor half way in"


def requests(ids: list[str], count: int, deep: str) -> dict[str, Callable[[int], str]]:
    """Each kind of request: its path for the n-th request. ``deep``: the page after the
    event half-way in, by cursor (deep_cursor_path)."""
    return {
        "item GET": lambda n: f"/api/events/{ids[n * 7919 % len(ids)]}",
        "first page": lambda n: "/api/events",
        "category=Music": lambda n: "/api/events?category=Music",
        "category=Music&sort=title": lambda n: "/api/events?category=Music&sort=title",
        "a week (date_from, date_to)": lambda n: (
            "/api/events?date_from=2026-03-02T00:00:00&date_to=2026-03-08T23:59:59"
        ),
        "sort=-date": lambda n: "/api/events?sort=-date",
        "sort=title": lambda n: "/api/events?sort=title",
        f"q={COMMON}": lambda n: f"/api/events?q={COMMON}",
        f"q={ABSENT} (no match)": lambda n: f"/api/events?q={ABSENT}",
        "offset = half the events": lambda n: f"/api/events?offset={count // 2}",
        DEEP_CURSOR: lambda n: deep,
    }


def next_link(link: str) -> str | None:
    """The target of a Link header's rel="next" (None when it has none)."""
    for part in link.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params:
            return target.strip().strip("<>")
    return None


def deep_cursor_path(client: Client, count: int) -> str:
    """The page after the event half-way in the default sort, by the cursor the API hands
    out: the rel="next" link of ``?limit=1&offset=count/2-1`` (one unmeasured GET), with
    the default page size (a cursor holds for any page size: events/cursors.py)."""
    status, headers = client.head_of("GET", f"/api/events?limit=1&offset={count // 2 - 1}")
    found = next_link(headers.get("link", ""))
    if status != 200 or found is None:
        raise RuntimeError(f"no rel=next link half way in ({status}: {headers.get('link')})")
    path, _, query = found.partition("?")
    params = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k != "limit"]
    return f"{path}?{urllib.parse.urlencode(params)}"


def measure_uncached(
    port: int, ids: list[str], count: int, repeats: int
) -> dict[str, tuple[float, float]]:
    client = Client(port)
    found: dict[str, tuple[float, float]] = {}
    try:
        for name, path in requests(ids, count, deep_cursor_path(client, count)).items():
            times = []
            for n in range(repeats + 2):
                status, ms = client.send("GET", path(n))
                if status != 200:
                    raise RuntimeError(f"{name}: {path(n)} answered {status}")
                if n >= 2:
                    times.append(ms)
            found[name] = (p(times, 0.5), p(times, 0.99))
    finally:
        client.close()
    return found


# --- 2. attack --------------------------------------------------------------------------


@dataclass
class Probe:
    kind: str
    rate: float  # requests a second
    source: str
    send: Callable[[Client, int], tuple[int, float]]


@dataclass
class Record:
    phase: str
    kind: str
    status: int
    ms: float


@dataclass
class Clock:
    phase: str = "before"
    stop: threading.Event = field(default_factory=threading.Event)


def probe_loop(port: int, probe: Probe, clock: Clock, out: list[Record]) -> None:
    client = Client(port, probe.source)
    interval = 1.0 / probe.rate
    due = time.monotonic()
    n = 0
    while not clock.stop.is_set():
        status, ms = probe.send(client, n)
        out.append(Record(clock.phase, probe.kind, status, ms))
        n += 1
        due += interval
        clock.stop.wait(max(0.0, due - time.monotonic()))
    client.close()


def attacker(port: int, source: str, seconds: float, go: Any, results: Any) -> None:
    """One attacker (in a process of its own): once ``go`` is set, unique expensive list
    queries on one connection for ``seconds``, each sent as soon as the last is answered."""
    # Niced: on this machine the attackers share a core with the probes' client, whose
    # timings must be the server's, not a starved client's (attackers are other machines).
    os.nice(19)
    rng = random.Random(source)
    letters = "abcdefghijklmnopqrstuvwxyz"
    client = Client(port, source, timeout=60.0)
    answers: Counter[int] = Counter()
    refusals: list[float] = []
    results.put(None)  # ready
    go.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        q = rng.choice(letters) + rng.choice(letters)
        path = f"/api/events?q={q}&sort=title&offset={rng.randrange(100_000)}"
        status, ms = client.send("GET", path)
        answers[status] += 1
        if status in (429, 503):
            refusals.append(ms)
    client.close()
    results.put((dict(answers), refusals))


@contextlib.contextmanager
def attackers(
    port: int, seconds: float
) -> Iterator[Callable[[], tuple[Counter[int], list[float]]]]:
    """ATTACKERS processes, each from its own address, started and ready (their start-up
    is not part of the attack); yields the function that lets them go and collects their
    answers once they are done."""
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    procs = [
        context.Process(target=attacker, args=(port, f"127.0.1.{n + 1}", seconds, go, results))
        for n in range(ATTACKERS)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            results.get(timeout=120)

        def run() -> tuple[Counter[int], list[float]]:
            go.set()
            answers: Counter[int] = Counter()
            refusals: list[float] = []
            for _ in procs:
                got, ms = results.get(timeout=seconds + 120)
                answers.update(got)
                refusals += ms
            return answers, refusals

        yield run
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


@dataclass
class AttackResult:
    records: list[Record]
    answers: Counter[int]
    refusals: list[float]
    busy_after: float  # seconds the server's CPU stayed busy once the attack stopped


def attack(db: Path, ids: list[str], workdir: Path, lengths: Lengths) -> AttackResult:
    env = app_env(db, "memory://")
    unread = iter(ids[len(ids) // 2 :])  # never read before: each GET is a cache miss
    hot = ids[0]
    writes = ids[1:100]

    def uncached(client: Client, n: int) -> tuple[int, float]:
        return client.send("GET", f"/api/events/{next(unread)}")

    def cached(client: Client, n: int) -> tuple[int, float]:
        return client.send("GET", f"/api/events/{hot}")

    def write(client: Client, n: int) -> tuple[int, float]:
        body = orjson.dumps({"title": f"Probe write {n}"})
        return client.send("PATCH", f"/api/events/{writes[n % len(writes)]}", body)

    def health(client: Client, n: int) -> tuple[int, float]:
        return client.send("GET", "/health")

    probes = [
        Probe("uncached item GET", 20, "127.0.2.1", uncached),
        Probe("cached item GET", 20, "127.0.2.2", cached),
        Probe("PATCH", 10, "127.0.2.3", write),
        Probe("/health", 5, "127.0.2.4", health),
    ]
    records: list[Record] = []
    with serve(env, workdir) as (port, pid):
        Client(port).send("GET", f"/api/events/{hot}")  # cached from here on
        clock = Clock()
        threads = [
            threading.Thread(target=probe_loop, args=(port, probe, clock, records))
            for probe in probes
        ]
        (_, before), (_, during), (_, after) = lengths.phases
        with attackers(port, during) as let_go:
            for thread in threads:
                thread.start()
            time.sleep(before)
            clock.phase = "attack"
            answers, refusals = let_go()
            clock.phase = "after"
        busy_after = busy_for(pid, within=after)
        clock.stop.set()
        for thread in threads:
            thread.join()
    return AttackResult(records, answers, refusals, busy_after)


def busy_for(pid: int, within: float, window: float = 0.2, idle_share: float = 0.25) -> float:
    """Seconds until the server's CPU use over ``window`` falls below ``idle_share`` of a
    core (the probes alone use a few percent); ``within`` if it never does. Sleeps the
    rest of ``within`` either way."""
    started = time.monotonic()
    found = within
    last = cpu_seconds(pid)
    while (now := time.monotonic()) - started < within:
        time.sleep(window)
        used = cpu_seconds(pid)
        if found == within and (used - last) / window < idle_share:
            found = now - started
        last = used
    return found


# --- 3. connection flood ----------------------------------------------------------------


@dataclass
class FloodResult:
    refused_ms: list[float]  # new connections while the flood held the cap
    refused_statuses: Counter[int]
    max_open_files: int
    closed_after: float  # seconds from the flood's last connection to the last one closed
    still_open: int
    after_ms: list[float]  # probe GETs once the time-outs fired
    after_statuses: Counter[int]


def flood(db: Path, ids: list[str], workdir: Path, lengths: Lengths) -> FloodResult:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 3 * lengths.flood)), hard))
    env = app_env(db, "memory://")
    env.update(
        EVENTAPI_MAX_CONNECTIONS=str(lengths.flood_cap),
        EVENTAPI_HEADER_TIMEOUT=str(lengths.flood_timeout),
        EVENTAPI_BODY_TIMEOUT=str(lengths.flood_timeout),
    )
    with serve(env, workdir) as (port, pid):
        socks: list[socket.socket] = []
        most = open_files(pid)
        for n in range(lengths.flood):
            sock = socket.socket()
            sock.bind((f"127.0.3.{n % 200 + 1}", 0))
            sock.connect((HOST, port))
            if n % 2:  # half a head, never finished
                sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n")
            else:  # a complete head, then never the body it declares
                sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            socks.append(sock)
            if n % 100 == 0:
                most = max(most, open_files(pid))
        flooded = time.monotonic()
        refused: list[float] = []
        statuses: Counter[int] = Counter()
        for _ in range(20):
            client = Client(port, "127.0.4.1", timeout=10.0)
            status, ms = client.send("GET", f"/api/events/{ids[0]}")
            client.close()
            statuses[status] += 1
            refused.append(ms)
            most = max(most, open_files(pid))
        last_closed, still_open = wait_closed(socks, within=lengths.flood_timeout + 20)
        for sock in socks:
            sock.close()
        after: list[float] = []
        after_statuses: Counter[int] = Counter()
        client = Client(port, "127.0.4.2")
        for n in range(200):
            status, ms = client.send("GET", f"/api/events/{ids[n % len(ids)]}")
            after_statuses[status] += 1
            after.append(ms)
        client.close()
    return FloodResult(
        refused, statuses, most, last_closed - flooded, still_open, after, after_statuses
    )


def wait_closed(socks: list[socket.socket], within: float) -> tuple[float, int]:
    """When (time.monotonic()) the server had closed the last socket (EOF or reset), and
    how many it had not closed within ``within`` seconds."""
    started = last = time.monotonic()
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, sock)
    left = len(socks)
    while left and time.monotonic() - started < within:
        for key, _ in selector.select(timeout=0.5):
            sock = key.data
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
                left -= 1
                last = time.monotonic()
    selector.close()
    return last, left


# --- report -----------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value:,.1f}"


def report(
    lengths: Lengths,
    sizes: list[int],
    imports: dict[int, Imported],
    uncached: dict[int, dict[str, tuple[float, float]]],
    attacked: AttackResult | None,
    flooded: FloodResult | None,
) -> str:
    lines = [
        f"Written by `python -m bench.scale` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}"
        " UTC.",
        "",
    ]
    lines += ["### Import (`eventapi import`, shuffled JSON Lines with ids, new database)", ""]
    lines += [
        "| events | time | peak RSS | written to disk | database |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        got = imports[size]
        ratio = got.written_mib / got.db_mib
        lines.append(
            f"| {size:,} | {got.seconds:.1f} s | {got.rss_mib:.0f} MiB | "
            f"{got.written_mib:,.0f} MiB ({ratio:.1f}x) | {got.db_mib:,.0f} MiB |"
        )
    lines += [
        "",
        f"### Uncached requests, one at a time (cache off; p50 / p99 ms of {lengths.repeats})",
        "",
    ]
    head = " | ".join(f"{size:,} events" for size in sizes)
    lines += [
        f"| request | {head} | largest / smallest (p50) |",
        "|---" + "|---:" * (len(sizes) + 1) + "|",
    ]
    for name in uncached[sizes[0]]:
        cells = [f"{ms(uncached[s][name][0])} / {ms(uncached[s][name][1])}" for s in sizes]
        ratio = uncached[sizes[-1]][name][0] / max(uncached[sizes[0]][name][0], 1e-9)
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio:.1f}x |")
    deep = [uncached[s][DEEP_CURSOR][0] / max(uncached[s]["first page"][0], 1e-9) for s in sizes]
    lines.append(
        f"| {DEEP_CURSOR} / first page (p50) | {' | '.join(f'{r:.2f}x' for r in deep)} | |"
    )
    if attacked is not None:
        lines += ["", f"### Attack ({sizes[-1]:,} events; {ATTACKERS} attackers)", ""]
        lines += [
            "| probe | rate | phase | requests | p50 ms | p99 ms | max ms | not 2xx |",
            "|---|---:|---|---:|---:|---:|---:|---|",
        ]
        rates = {"uncached item GET": 20, "cached item GET": 20, "PATCH": 10, "/health": 5}
        for kind, rate in rates.items():
            for phase, _ in lengths.phases:
                seen = [r for r in attacked.records if r.kind == kind and r.phase == phase]
                times = [r.ms for r in seen]
                bad = Counter(r.status for r in seen if not 200 <= r.status < 300)
                lines.append(
                    f"| {kind} | {rate}/s | {phase} | {len(seen)} | {ms(p(times, 0.5))} | "
                    f"{ms(p(times, 0.99))} | {ms(max(times, default=float('nan')))} | "
                    f"{dict(bad) or 0} |"
                )
        answers = ", ".join(f"{code}: {n:,}" for code, n in sorted(attacked.answers.items()))
        lines += [
            "",
            f"Attackers' answers: {answers}; refusals (429/503) p50 "
            f"{ms(p(attacked.refusals, 0.5))} ms, p99 {ms(p(attacked.refusals, 0.99))} ms. "
            f"The server's CPU was idle (under a quarter of a core) {attacked.busy_after:.1f} s "
            "after the attack stopped.",
        ]
    if flooded is not None:
        lines += [
            "",
            f"### Connection flood ({lengths.flood:,} connections, cap {lengths.flood_cap:,}, "
            f"time-outs {lengths.flood_timeout:g} s)",
            "",
        ]
        lines += [
            f"- Open files of the server, at most: {flooded.max_open_files:,}.",
            f"- A new connection meanwhile: {dict(flooded.refused_statuses)}, p50 "
            f"{ms(p(flooded.refused_ms, 0.5))} ms, max {ms(max(flooded.refused_ms))} ms.",
            f"- The server had closed all of them {flooded.closed_after:.1f} s after the last "
            f"was opened ({flooded.still_open} still open at the end of the wait).",
            f"- Then {len(flooded.after_ms)} GETs one at a time: {dict(flooded.after_statuses)}, "
            f"p50 {ms(p(flooded.after_ms, 0.5))} ms, p99 {ms(p(flooded.after_ms, 0.99))} ms.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="comma-separated event counts"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where files go (default: a temporary folder)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write the Markdown here (default: stdout)"
    )
    parser.add_argument("--no-attack", action="store_true")
    parser.add_argument("--no-flood", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="short phases, a small flood (a smoke test)"
    )
    opts = parser.parse_args(argv)
    sizes = sorted(int(s) for s in opts.sizes.split(","))
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    lengths = QUICK if opts.quick else Lengths()
    with contextlib.ExitStack() as stack:
        if opts.workdir is None:
            import tempfile

            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        else:
            workdir = opts.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        imports: dict[int, Imported] = {}
        uncached: dict[int, dict[str, tuple[float, float]]] = {}
        ids: dict[int, list[str]] = {}
        for size in sizes:
            source, db = workdir / f"events-{size}.jsonl", workdir / f"events-{size}.db"
            print(f"scale: {size:,} events", file=sys.stderr, flush=True)
            ids[size] = write_events(source, size)
            imports[size] = run_import(source, db, workdir)
            source.unlink()
            with serve(app_env(db, "none"), workdir) as (port, _):
                uncached[size] = measure_uncached(port, ids[size], size, lengths.repeats)
        attacked = (
            None
            if opts.no_attack
            else attack(workdir / f"events-{sizes[-1]}.db", ids[sizes[-1]], workdir, lengths)
        )
        flooded = (
            None
            if opts.no_flood
            else flood(workdir / f"events-{sizes[0]}.db", ids[sizes[0]], workdir, lengths)
        )
        text = report(lengths, sizes, imports, uncached, attacked, flooded)
    if opts.out is None:
        sys.stdout.write(text)
    else:
        opts.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
