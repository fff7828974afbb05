"""Scenario 4: Zipf-distributed reads over every id with a fraction of writes, and a check
that no read ever returns an older version than one acknowledged before it started.

Each write PATCHes the title to "<base title> v<N>", N counting up per id; at most one
write per id is in flight, so versions are acknowledged in order. When a read is sent, the
chooser snapshots the newest version acknowledged so far for that id; the response must
carry that version or a newer one (a write still in flight may already show), else it is
a stale read. Cache misses (X-Cache: MISS answers) are sorted by cause: the first reads of
an id, reads of an id written since its last hit that followed a write, or anything else
(eviction, expiry).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from bench.loadgen import Request
from bench.workloads import ITEM, Zipf

_VERSION = re.compile(rb'"title":"[^"]*? v(\d+)"')
_REDRAWS = 8  # tries to find an id with no write in flight before sending a read instead


def version_of(body: bytes) -> int:
    """The version number at the end of the title in an event's JSON (0 if none)."""
    match = _VERSION.search(body)
    return int(match.group(1)) if match else 0


@dataclass
class MixedCounts:
    reads: int = 0
    writes: int = 0
    failed_reads: int = 0
    failed_writes: int = 0
    stale: int = 0
    first_stale: str = ""
    miss_first: int = 0  # misses on the first read of an id
    miss_after_write: int = 0  # misses on an id written since a hit that followed it
    miss_other: int = 0
    write_ms: list[float] = field(default_factory=list)  # latency of each write


class MixedWorkload:
    def __init__(
        self,
        titles: Mapping[str, str],
        *,
        s: float = 1.1,
        write_fraction: float = 0.05,
        seed: int = 17,
    ) -> None:
        rng = random.Random(seed)
        self._by_rank = rng.sample(list(titles), len(titles))  # the k-th most popular id
        self._zipf = Zipf(len(titles), s, seed=seed + 1)
        self._rng = rng
        self._titles = titles
        self.write_fraction = write_fraction
        self._issued: dict[str, int] = {}  # newest version sent per id
        self._acked: dict[str, int] = {}  # newest version acknowledged per id
        self._writing: set[str] = set()
        self._seen: set[str] = set()  # ids read at least once
        self._dirty: set[str] = set()  # ids written since a hit that followed the write
        self.counts = MixedCounts()

    def reset_counts(self) -> MixedCounts:
        """Start counting afresh (after a warm-up); returns the counts so far."""
        before, self.counts = self.counts, MixedCounts()
        return before

    def _pick(self) -> str:
        return self._by_rank[self._zipf.next()]

    def choose(self) -> Request:
        if self._rng.random() < self.write_fraction:
            for _ in range(_REDRAWS):
                event_id = self._pick()
                if event_id not in self._writing:
                    return self._write(event_id)
        event_id = self._pick()
        tag = ("read", event_id, self._acked.get(event_id, 0))
        return Request("GET", ITEM.format(event_id), b"", tag)

    def _write(self, event_id: str) -> Request:
        version = self._issued.get(event_id, 0) + 1
        self._issued[event_id] = version
        self._writing.add(event_id)
        self._dirty.add(event_id)
        body = orjson.dumps({"title": f"{self._titles[event_id]} v{version}"})
        return Request("PATCH", ITEM.format(event_id), body, ("write", event_id, version))

    def on_response(
        self, req: Request, status: int, head: bytes, body: bytes, t0: int, t1: int
    ) -> None:
        kind, event_id, version = req.tag
        counts = self.counts
        if kind == "write":
            counts.writes += 1
            counts.write_ms.append((t1 - t0) / 1e6)
            self._writing.discard(event_id)
            if status == 200:
                self._acked[event_id] = max(self._acked.get(event_id, 0), version)
            else:
                counts.failed_writes += 1
            return
        counts.reads += 1
        if status != 200:
            counts.failed_reads += 1
            return
        if b"\r\nx-cache: miss" not in head.lower():
            # A hit after the newest write was acknowledged (sent after it, none in flight).
            if event_id not in self._writing and version == self._acked.get(event_id, 0):
                self._dirty.discard(event_id)
        elif event_id not in self._seen:
            counts.miss_first += 1
        elif event_id in self._dirty:
            counts.miss_after_write += 1
        else:
            counts.miss_other += 1
        self._seen.add(event_id)
        seen = version_of(body)
        if seen < version:
            counts.stale += 1
            if not counts.first_stale:
                counts.first_stale = f"{event_id}: v{seen} after v{version} was acknowledged"
