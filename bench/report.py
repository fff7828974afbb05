"""The results: a table on stdout, and docs/benchmarks.md with the machine, the command,
the table, the issue's targets (met or not) and the SVG chart beside it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bench import chart, machine, server
from bench.options import SLOW_CONNECTIONS, Options
from bench.pinning import Pinning
from bench.results import ON_UVICORN, Row, floor_rps, server_change
from bench.table import HEAD, cells, text_table
from bench.targets import evaluate
from eventapi.http.connections import PROTOCOL

KEEP = "<!-- make bench: everything below this line is kept when the file is regenerated -->"


def _md_row(values: Sequence[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def markdown(rows: Sequence[Row], opts: Options, generator: str, pinning: Pinning) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    svg_name = opts.out.with_suffix(".svg").name
    ms = opts.store_latency * 1000
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m bench` on {now}; every number below comes from that one run,",
        "so the ratios compare measurements taken minutes apart on the same machine.",
        "",
        *(QUICK if opts.is_quick else []),
        "## Machine and command",
        "",
        "| | |",
        "|---|---|",
        *(_md_row([k, v]) for k, v in machine.describe(generator)),
        _md_row(["pinning", pinning.describe()]),
        *(_md_row([k, v]) for k, v in SERVERS),
        _md_row(["command", f"`{opts.command}`"]),
        _md_row(["date", now]),
        _md_row(
            [
                "sizes",
                f"{opts.events:,} events, {opts.duration:g} s per scenario after "
                f"{opts.warmup:g} s of warm-up, {opts.connections} connections, hot set of "
                f"{opts.hot} ids",
            ]
        ),
        "",
        "## Results",
        "",
        _md_row(HEAD),
        _md_row(["---"] * 3 + ["---:"] * (len(HEAD) - 4) + ["---"]),
        *(_md_row(cells(r)) for r in rows),
        "",
        "`x floor`: requests/s over the mean of the floor's measurements by the same load",
        "generator with as many connections (blank at other connection counts).",
        "`store reads`: the server's `eventapi_store_operations_total` (get + list) counted",
        "during the measured period; `hit ratio`: hits over cache lookups in",
        "`eventapi_cache_requests_total`. `errors`: failed connections and non-2xx/3xx answers.",
        "",
        *_floor_spread(rows),
        *_granian(rows),
        f"![Latency, cached vs uncached, p50 and p99]({svg_name})",
        "",
        "## Targets (issue 11)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(_md_row([t.text, t.measured, t.verdict]) for t in evaluate(rows, ms)),
        "",
        "## What each scenario does",
        "",
        *(
            note.replace("{ms}", f"{ms:g}").replace("{many}", str(SLOW_CONNECTIONS))
            for note in SCENARIO_NOTES
        ),
        "",
    ]
    return "\n".join(lines)


PROTOCOL_NAME = PROTOCOL.rpartition(":")[2]
SERVERS = [
    (
        "server (app)",
        "`eventapi serve` as the README runs it: uvicorn, 1 worker unless the row says "
        f"otherwise, `--http` {PROTOCOL_NAME} (a header timer per request), keep-alive "
        f"{server.KEEPALIVE} s, shutdown {server.SHUTDOWN} s, no uvicorn access log, no "
        "proxy-headers middleware (EVENTAPI_TRUSTED_PROXIES unset)",
    ),
    (
        "server (others)",
        f"the floor, the peers and the slow-store app (a factory `eventapi serve` cannot "
        f"start) on uvicorn's command line with the same protocol class and options: "
        f"`{' '.join(server.UVICORN_OPTIONS)}`",
    ),
    (
        "server (granian rows)",
        f"granian {server.granian_version() or 'not installed'}: ASGI, 1 worker, HTTP/1, "
        f"uvloop, header-read time-out {server.HEADER_TIMEOUT:g} s, no access log",
    ),
]

QUICK = ["**Quick run** (`--quick`): smoke-test sizes, too small to draw conclusions from.", ""]


def _floor_spread(rows: Sequence[Row]) -> list[str]:
    """How far apart the floor's measurements were: the run's own noise."""
    lines = []
    for (generator, _), values in floor_rps(list(rows)).items():
        if len(values) > 1:
            spread = (max(values) - min(values)) / max(values)
            shown = " and ".join(f"{v:,.0f}" for v in values)
            lines.append(
                f"The floor measured by {generator} at the start and at the end of the run: "
                f"{shown} req/s ({spread:.0%} apart), a measure of this machine's noise."
            )
    return [*lines, ""] if lines else []


def _granian(rows: Sequence[Row]) -> list[str]:
    """Which server won: each granian row against the uvicorn row it repeats."""
    by_key = {r.key: r for r in rows}
    parts = []
    for key, what in (("floor-granian", "floor"), ("cached-granian", "cached item GET")):
        row, other = by_key.get(key), by_key.get(ON_UVICORN[key])
        change = None if row is None else server_change(row, other)
        if change is not None and row is not None and row.load and other and other.load:
            parts.append(
                f"{what} {row.load.rps:,.0f} req/s on granian, {other.load.rps:,.0f} on "
                f"uvicorn ({change:+.0%})"
            )
    if not parts:
        return []
    return [f"granian vs uvicorn, same app and load: {'; '.join(parts)}.", ""]


SCENARIO_NOTES = [
    "1. **floor**: a bare ASGI app (`bench/floor.py`) answering every request with the",
    "   bytes of a cached event GET, on uvicorn with the app's protocol class and options. 1b:",
    "   the same with the bundled Python generator (when wrk drives the rest: how close it",
    "   gets); 1c: again at the end of the run (drift and noise); 1d: on granian.",
    "2. **cached item GET**: GET /api/events/{id} over a hot set of ids, each read once",
    "   before the run; memory:// and a private redis-server; and at concurrency 1. With",
    "   the request log off and on (`EVENTAPI_LOG_LEVEL=info`, one line per request into",
    "   the server's log file, as `eventapi serve` writes them), two servers up at once and",
    "   measured in alternating rounds, each row its median: the log's cost on the hit path. On",
    "   granian: the same app (`eventapi.app:app_from_env`) and load on another server.",
    "3. **uncached item GET**: the same requests with `EVENTAPI_CACHE_URL=none`.",
    "4. **Zipf reads + writes**: ids drawn with P(rank k) ~ 1/k^1.1 over every event, 5% of",
    "   requests a PATCH of the title to a new version number (writes follow the same Zipf",
    "   popularity). A read sent after a write to its id was acknowledged that returns an",
    "   older version is a stale read. Bundled Python generator; the same workload warms up",
    "   first, and stale reads of the warm-up are reported too.",
    "   **Concurrent writers** (`bench/writers.py`; two `eventapi serve` processes sharing",
    "   the store file and a Redis, as the 2-process row): every write goes to one of the 4",
    "   most popular ids, however many of that id are in flight, so writes of one id race",
    "   through both processes. Only the store knows which of them came last: SQLite",
    "   triggers the bench installs before the servers start record each committed title in",
    "   commit order, and after the run a read counts as stale if a write acknowledged",
    "   before it was sent committed after the version it returned.",
    "5. **cold-key stampede**: an event is created (nothing of it is cached: an update would",
    "   leave its new value there), then that many connections, all opened beforehand, send",
    "   one GET of it each at once; store reads should be 1.",
    "6. **list queries**: six realistic query strings, cached (warmed) vs cache off.",
    "7. **slow store**: 2 and 3 again over a slow store ({ms} ms added to every store",
    "   request, `bench/slow_store.py`), modelling the remote MongoDB of the original",
    "   README's figures; at the run's connections and at {many}.",
    "8. **2 workers** (`--workers 2`): the cached item GET on `eventapi serve --workers 2`",
    "   with a shared Redis, the floor on `uvicorn --workers 2`; nothing pinned, as two",
    "   workers need both CPUs.",
    "9. **fixed arrival rate**: the cached item GET and the cached list pages (in-process",
    "   cache) driven open loop at 50% and 80% of the throughput rows 2 and 6 measured:",
    "   request n is due at n / rate whatever came before, and its latency counts from",
    "   then, so queueing shows (no coordinated omission).",
    "10. **peers** (`bench/peers.py`): the item GET of 2 (hot set, same store file, same",
    "   redis-server, same load) served by two other cache-asides on the floor's uvicorn",
    "   command line: the tutorial one the original README describes (Redis GET, json.loads,",
    "   a Pydantic model FastAPI serialises; on a miss the SQLite row, SET with a TTL) and",
    "   fastapi-cache2's `@cache` decorator on its RedisBackend.",
]


def finish(rows: Sequence[Row], opts: Options, generator: str, pinning: Pinning) -> None:
    print(f"load generator: {generator}; pinning: {pinning.describe()}")
    print(text_table(rows))
    kept = ""
    if opts.out.exists():
        previous = opts.out.read_text()
        if KEEP in previous:
            kept = previous[previous.index(KEEP) + len(KEEP) :].lstrip("\n")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, opts, generator, pinning) + "\n" + KEEP + "\n" + kept
    opts.out.write_text(text)
    by_key = {r.key: r for r in rows}
    svg = chart.svg(by_key, opts.store_latency * 1000, opts.connections)
    opts.out.with_suffix(".svg").write_text(svg)
    print(f"\nwrote {opts.out} and {opts.out.with_suffix('.svg')}")
