"""A history-based read-your-acknowledged-writes checker for black-box runs.

Every operation is recorded in the test process with one clock (``time.monotonic()``): the
time just before the request was handed to the client (``sent``) and the time just after its
response was read (``received``). Both are conservative: the real send happens no earlier
than ``sent`` and the real acknowledgement no later than ``received``, so a read judged
stale here really was sent after the newer write had been acknowledged.

The promise under test: any request, to any server process, sent after a write's
acknowledgement returns that write or a newer one. A read is STALE if it returns a version
older than some version whose write was acknowledged (200, or 201 for the creation) before
the read was sent.

Each event has exactly one writer whose versions rise strictly (title ``v<N>``), so a
version number orders the event's states. Version 0 is the creation; version ``ABSENT``
means a list page that should have shown the event did not.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

ReadKind = Literal["item", "list"]
ACKNOWLEDGED = frozenset({200, 201})
ABSENT = -1  # the event was missing from a list page that should have held it
TRANSPORT_ERROR = 0  # status recorded when no HTTP response came back at all


@dataclass(frozen=True, slots=True)
class Write:
    event: str
    version: int
    via: str
    sent: float
    received: float
    status: int

    @property
    def acknowledged(self) -> bool:
        return self.status in ACKNOWLEDGED

    @property
    def seconds(self) -> float:
        return self.received - self.sent


@dataclass(frozen=True, slots=True)
class Read:
    event: str
    version: int | None  # None when the response was not a 200 with a parsable title
    via: str
    kind: ReadKind
    sent: float
    received: float
    status: int
    cache: str = ""  # the X-Cache header: HIT, MISS, BYPASS (or "" if absent)

    @property
    def seconds(self) -> float:
        return self.received - self.sent


@dataclass(frozen=True, slots=True)
class Stale:
    read: Read
    newer: Write  # the first acknowledged write, newer than what the read saw, before it
    latest: int  # the newest version acknowledged before the read was sent

    @property
    def age(self) -> float:
        """How long the newer version had been acknowledged when the read was sent."""
        return self.read.sent - self.newer.received

    def describe(self, origin: float = 0.0) -> str:
        r = self.read
        return (
            f"{r.kind} {r.event[-6:]} via {r.via} sent t={r.sent - origin:.3f}s saw "
            f"v{r.version} (X-Cache {r.cache or '-'}), but v{self.newer.version} was acked via "
            f"{self.newer.via} at t={self.newer.received - origin:.3f}s ({self.age * 1000:.0f} "
            f"ms before; v{self.latest} acked by then)"
        )


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Report:
    writes: tuple[Write, ...]
    reads: tuple[Read, ...]
    stale: tuple[Stale, ...]
    write_errors: tuple[Write, ...]
    read_errors: tuple[Read, ...]
    phantoms: tuple[Read, ...]  # a version nobody ever tried to write

    @property
    def stale_hits(self) -> int:
        return sum(1 for s in self.stale if s.read.cache == "HIT")

    @property
    def max_staleness(self) -> float:
        return max((s.age for s in self.stale), default=0.0)

    @property
    def ok(self) -> bool:
        return not (self.stale or self.write_errors or self.read_errors or self.phantoms)

    def summary(self, origin: float | None = None, examples: int = 5) -> str:
        start = origin if origin is not None else min((w.sent for w in self.writes), default=0.0)
        by_kind = Counter(s.read.kind for s in self.stale)
        by_via = Counter(s.read.via for s in self.stale)
        read_ms = [r.seconds * 1000 for r in self.reads]
        write_ms = [w.seconds * 1000 for w in self.writes]
        lines = [
            f"{len(self.writes)} writes, {len(self.reads)} reads "
            f"({sum(1 for r in self.reads if r.kind == 'list')} from lists)",
            f"stale reads: {len(self.stale)} (X-Cache HIT: {self.stale_hits}; "
            f"by kind {dict(by_kind)}; by process {dict(by_via)}; "
            f"max staleness {self.max_staleness * 1000:.0f} ms)",
            f"write errors: {len(self.write_errors)} "
            f"{dict(Counter(w.status for w in self.write_errors))}",
            f"read errors: {len(self.read_errors)} "
            f"{dict(Counter(r.status for r in self.read_errors))}; phantoms: {len(self.phantoms)}",
            f"read latency ms p50 {_percentile(read_ms, 0.5):.1f} p99 "
            f"{_percentile(read_ms, 0.99):.1f} max {max(read_ms, default=0):.1f}; "
            f"write latency ms p50 {_percentile(write_ms, 0.5):.1f} p99 "
            f"{_percentile(write_ms, 0.99):.1f} max {max(write_ms, default=0):.1f}",
        ]
        lines += ["  " + s.describe(start) for s in self.stale[:examples]]
        lines += [
            f"  write error: v{w.version} of {w.event[-6:]} via {w.via} -> {w.status} after "
            f"{w.seconds * 1000:.0f} ms"
            for w in self.write_errors[:examples]
        ]
        return "\n".join(lines)


def check(writes: Iterable[Write], reads: Iterable[Read]) -> Report:
    """Judge every read against the writes acknowledged before it was sent."""
    all_writes = tuple(writes)
    all_reads = tuple(reads)
    acked: dict[str, list[Write]] = defaultdict(list)
    tried: dict[str, set[int]] = defaultdict(set)
    for w in all_writes:
        tried[w.event].add(w.version)
        if w.acknowledged:
            acked[w.event].append(w)
    # Per event: acknowledged writes by acknowledgement time, and the newest version among
    # the first k of them (a prefix maximum), so one bisect answers "newest acked before t".
    times: dict[str, list[float]] = {}
    newest: dict[str, list[int]] = {}
    for event, ws in acked.items():
        ws.sort(key=lambda w: w.received)
        times[event] = [w.received for w in ws]
        running: list[int] = []
        for w in ws:
            running.append(max(w.version, running[-1]) if running else w.version)
        newest[event] = running

    stale: list[Stale] = []
    read_errors: list[Read] = []
    phantoms: list[Read] = []
    for r in all_reads:
        if r.status != 200 or r.version is None:
            read_errors.append(r)
            continue
        if r.version != ABSENT and r.version not in tried[r.event]:
            phantoms.append(r)
            continue
        before = bisect.bisect_left(times.get(r.event, []), r.sent)
        if before == 0:
            continue
        latest = newest[r.event][before - 1]
        if r.version >= latest:
            continue
        first_newer = next(w for w in acked[r.event][:before] if w.version > r.version)
        stale.append(Stale(r, first_newer, latest))
    stale.sort(key=lambda s: s.read.sent)
    return Report(
        writes=all_writes,
        reads=all_reads,
        stale=tuple(stale),
        write_errors=tuple(w for w in all_writes if not w.acknowledged),
        read_errors=tuple(read_errors),
        phantoms=tuple(phantoms),
    )
