"""The measurements made against one running server; each returns a results Row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import client, writers, wrk
from bench.loadgen import LoadGenerator, OnResponse, Request, run_load
from bench.mixed import MixedWorkload
from bench.pinning import Pinning
from bench.results import Row
from bench.stampede import stampede
from bench.stats import LoadResult, percentile
from bench.workloads import LIST_QUERIES, uniform


@dataclass
class Bench:
    pinning: Pinning
    workdir: Path
    generator: str  # python | wrk: for the scenarios either can drive
    duration: float
    warmup: float
    connections: int
    label: Callable[[str], str]

    def drive(
        self,
        port: int,
        paths: Sequence[str],
        *,
        connections: int | None = None,
        generator: str | None = None,
        duration: float | None = None,
    ) -> LoadResult:
        conns = connections or self.connections
        seconds = duration or self.duration
        if (generator or self.generator) == "wrk":
            return wrk.run(
                port,
                paths,
                connections=conns,
                duration=seconds,
                pinning=self.pinning,
                workdir=self.workdir,
            )
        return self.python(port, uniform(paths), conns, seconds)

    def python(
        self,
        port: int,
        choose: Callable[[], Request | str],
        connections: int,
        duration: float,
        on_response: OnResponse | None = None,
        rate: float | None = None,
    ) -> LoadResult:
        gen = LoadGenerator(
            port,
            choose,
            connections=connections,
            duration=duration,
            on_response=on_response,
            rate=rate,
        )
        with self.pinning.load_affinity():
            return run_load(gen)

    def measure(
        self,
        key: str,
        cache: str,
        port: int,
        paths: Sequence[str],
        *,
        route: str | None,
        connections: int | None = None,
        generator: str | None = None,
    ) -> Row:
        """Warm up (Python generator, not counted), then measure; counters if ``route``."""
        conns = connections or self.connections
        client.warm(port, paths)
        self.python(port, uniform(paths, seed=3), conns, self.warmup)
        before = client.scrape(port) if route else None
        load = self.drive(port, paths, connections=conns, generator=generator)
        row = Row(key, self.label(key), cache, load)
        if route and before is not None:
            row.add_delta(client.Delta.between(before, client.scrape(port), route))
        return row


def floor_rows(b: Bench, port: int, paths: Sequence[str]) -> list[Row]:
    rows = [b.measure("floor", "-", port, paths, route=None)]
    if b.generator == "wrk":  # how far the bundled generator gets on the same floor
        rows.append(b.measure("floor-python", "-", port, paths, route=None, generator="python"))
    return rows


def lists(b: Bench, key: str, cache: str, port: int) -> Row:
    row = b.measure(key, cache, port, LIST_QUERIES, route="list")
    row.note = f"{len(LIST_QUERIES)} queries, one chosen at random per request"
    return row


def zipf(b: Bench, key: str, cache: str, port: int, titles: Mapping[str, str]) -> Row:
    work = MixedWorkload(titles)
    conns = b.connections
    b.python(port, work.choose, conns, max(b.warmup, b.duration), work.on_response)
    warm = work.reset_counts()
    before = client.scrape(port)
    load = b.python(port, work.choose, conns, b.duration, work.on_response)
    row = Row(key, b.label(key), cache, load)
    row.add_delta(client.Delta.between(before, client.scrape(port), "item"))
    c = work.counts
    row.stale = c.stale + warm.stale
    share = c.writes / max(c.reads + c.writes, 1)
    notes = [f"{len(titles):,} ids, s=1.1, writes {share:.1%}", f"stale reads: {c.stale}"]
    if c.first_stale:
        notes[-1] += f" (first: {c.first_stale})"
    if warm.stale:
        notes.append(f"{warm.stale} stale reads during the warm-up")
    if cache != "none":
        notes.append(
            f"MISS answers: {c.miss_after_write} after a write, {c.miss_first} first reads, "
            f"{c.miss_other} other"
        )
    if c.write_ms:
        ms = sorted(c.write_ms)
        notes.append(f"writes p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms")
    if c.failed_reads or c.failed_writes:
        notes.append(f"failed reads {c.failed_reads}, failed writes {c.failed_writes}")
    row.note = "; ".join(notes)
    return row


def zipf_writers(
    b: Bench, key: str, cache: str, port: int, titles: Mapping[str, str], database: Path
) -> Row:
    """Zipf reads, writes racing on the hottest ids (bench/writers.py), stale reads judged
    in the commit order the triggers ``writers.install`` put on ``database`` recorded."""
    work = writers.ConcurrentWriters(titles)
    conns = b.connections
    b.python(port, work.choose, conns, max(b.warmup, b.duration), work.on_response)
    work.reset_counts()
    load = b.python(port, work.choose, conns, b.duration, work.on_response)
    row = Row(key, b.label(key), cache, load)
    judge = writers.Judge(writers.commit_log(database), work.acks)
    stale = judge.stale(work.reads[work.measured_from :])
    warm_stale = judge.stale(work.reads[: work.measured_from])
    row.stale = stale.count + warm_stale.count
    c = work.counts
    share = c.writes / max(c.reads + c.writes, 1)
    notes = [
        f"{len(titles):,} ids, s=1.1, writes {share:.1%}, all to the {len(work.hot)} hottest",
        f"stale reads: {stale.count}",
    ]
    if stale.first:
        notes[-1] += f" (first: {stale.first})"
    if warm_stale.count:
        notes.append(f"{warm_stale.count} stale reads during the warm-up")
    notes.append(
        f"up to {c.most_in_flight} writes of one id in flight, {c.overlapped} sent while "
        f"another of their id was; {judge.out_of_order} acknowledged after a later commit"
    )
    if judge.unrecorded:
        notes.append(f"{judge.unrecorded} acknowledged writes never committed")
    if c.write_ms:
        ms = sorted(c.write_ms)
        notes.append(f"writes p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms")
    if c.failed_reads or c.failed_writes:
        notes.append(f"failed reads {c.failed_reads}, failed writes {c.failed_writes}")
    row.note = "; ".join(notes)
    return row


def stampede_row(b: Bench, key: str, cache: str, port: int, title: str, connections: int) -> Row:
    result = stampede(port, title, connections, b.pinning)
    row = Row(key, b.label(key), cache, result.load)
    row.add_delta(result.delta)
    row.stale = result.stale
    row.note = (
        f"{result.load.requests} concurrent GETs of an event just created, "
        f"store reads: {result.delta.store_reads}; stale reads: {result.stale}"
    )
    return row


def fixed_rate(
    b: Bench, key: str, cache: str, port: int, paths: Sequence[str], of: Row | None, share: float
) -> Row:
    """Latency at ``share`` of the throughput ``of`` measured (closed loop) on the same
    requests: an open-loop load at that fixed rate, each latency counted from when its
    request was due."""
    if of is None or of.load is None or not of.load.rps:
        return Row(key, b.label(key), cache, skipped="its closed-loop row did not run")
    rate = of.load.rps * share
    b.python(port, uniform(paths, seed=3), b.connections, b.warmup)
    load = b.python(port, uniform(paths, seed=4), b.connections, b.duration, rate=rate)
    row = Row(key, b.label(key), cache, load)
    row.note = f"open loop at {rate:,.0f} req/s ({share:.0%} of the closed-loop rate)"
    return row
