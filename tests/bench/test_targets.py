"""The issue's targets (bench/targets.py) and the rows they read, on made-up measurements."""

from __future__ import annotations

import pytest

from bench.options import SLOW_CONNECTIONS
from bench.report import _granian
from bench.results import Row, label, server_change, set_ratios
from bench.stats import LoadResult
from bench.targets import Target, evaluate


def row(key: str, rps: float, conns: int = 64, **fields: object) -> Row:
    load = LoadResult("wrk", conns, requests=round(rps), elapsed=1.0, p50=0.25, p99=2, p999=3)
    made = Row(key, key, "-", load)
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def by_text(targets: list[Target]) -> dict[str, Target]:
    return {t.text: t for t in targets}


def run_meeting_every_target() -> list[Row]:
    return [
        row("floor", 20_000),
        row("cached-memory", 12_000),
        row("cached-redis", 11_000),
        row("lists-cached", 9_000),
        row("cached-unlogged", 12_000),
        row("cached-logged", 11_500),
        row("zipf-memory", 8_000, per_1k=25.0, stale=0),
        row("zipf-redis", 7_000, per_1k=10.0, stale=0),
        row("zipf-writers", 6_000, stale=0),
        row("slow-cached", 10_000),
        row("slow-uncached", 1_000),
        row("slow-cached-many", 10_000, SLOW_CONNECTIONS),
        row("slow-uncached-many", 400, SLOW_CONNECTIONS),
        *(row(k, 5_000) for k in ("rate50-item", "rate80-item", "rate50-list", "rate80-list")),
        row("peer-tutorial", 2_500),
        row("peer-fastapi-cache", 2_000),
        row("stampede-memory", 1_000, store_reads=1),
        row("stampede-redis", 1_000, store_reads=1),
        row("cached-c1", 3_000),
    ]


def test_every_target_of_issue_11_met() -> None:
    rows = run_meeting_every_target()
    set_ratios(rows)
    targets = evaluate(rows, 50)
    assert [t.verdict for t in targets] == ["met"] * len(targets)
    found = by_text(targets)
    assert found["cached item GET throughput >= 0.50x the floor (memory)"].measured == "0.60x"
    assert found["cached item GET throughput >= 0.50x the floor (redis)"].measured == "0.55x"
    assert found["cached list page (scenario 6, cached) >= 0.40x the floor"].measured == "0.45x"
    log = found["request log on the cached hit path costs <= 5% of its throughput"]
    assert log.measured == "4.2%"
    zipf = "Zipf reads with 5% writes: store reads <= 3% of requests"
    assert found[f"{zipf} (memory)"].measured == "2.50%"
    assert found[f"{zipf} (redis)"].measured == "1.00%"
    slow = found[
        "with 50 ms simulated store latency: cached throughput >= 20x uncached at 256 connections"
    ]
    assert slow.measured == "25.0x (10.0x at 64 connections)"
    peers = found["ours (item hit, redis) >= 4x the best peer"]
    assert peers.measured == "4.40x (best: tutorial cache-aside, 2,500 req/s)"
    rates = [t for t in targets if t.text.startswith("latency at 50% and 80%")]
    assert rates[0].measured.startswith("50% item p99 2.00 ms; 80% item p99 2.00 ms")
    kept = [t.text for t in targets if t.text.startswith("kept")]
    assert len(kept) == 4
    assert found["kept: Zipf reads with 5% writes: zero stale reads"].measured == "0 + 0 + 0"


def test_a_stale_read_with_concurrent_writers_fails_the_kept_target() -> None:
    rows = {r.key: r for r in run_meeting_every_target()}
    rows["zipf-writers"] = row("zipf-writers", 6_000, stale=3)
    never_stale = by_text(evaluate(list(rows.values()), 50))[
        "kept: Zipf reads with 5% writes: zero stale reads"
    ]
    assert (never_stale.measured, never_stale.met) == ("0 + 0 + 3", False)
    del rows["zipf-memory"], rows["zipf-redis"]  # only the concurrent writers' row ran
    never_stale = by_text(evaluate(list(rows.values()), 50))[
        "kept: Zipf reads with 5% writes: zero stale reads"
    ]
    assert (never_stale.measured, never_stale.met) == ("3", False)


def test_each_threshold_fails_just_past_it() -> None:
    rows = {r.key: r for r in run_meeting_every_target()}
    rows["cached-memory"] = row("cached-memory", 9_900)  # 0.495x
    rows["lists-cached"] = row("lists-cached", 7_900)  # 0.395x
    rows["cached-logged"] = row("cached-logged", 11_350)  # 5.4% of the unlogged 12,000
    rows["zipf-redis"] = row("zipf-redis", 7_000, per_1k=30.5, stale=0)
    rows["slow-uncached-many"] = row("slow-uncached-many", 501, SLOW_CONNECTIONS)
    rows["peer-fastapi-cache"] = row("peer-fastapi-cache", 2_800)
    del rows["rate80-list"]
    listed = list(rows.values())
    set_ratios(listed)
    failed = {t.text for t in evaluate(listed, 50) if t.met is False}
    assert failed == {
        "cached item GET throughput >= 0.50x the floor (memory)",
        "cached list page (scenario 6, cached) >= 0.40x the floor",
        "request log on the cached hit path costs <= 5% of its throughput",
        "Zipf reads with 5% writes: store reads <= 3% of requests (redis)",
        "with 50 ms simulated store latency: cached throughput >= 20x uncached at 256 connections",
        "latency at 50% and 80% of the measured maximum (open loop): p50/p99/p99.9 of the "
        "cached item and list GETs reported",
        "ours (item hit, redis) >= 4x the best peer",
    }
    peers = by_text(evaluate(listed, 50))["ours (item hit, redis) >= 4x the best peer"]
    assert peers.measured == "3.93x (best: fastapi-cache2 @cache, 2,800 req/s)"


def test_nothing_measured_is_not_measured() -> None:
    skipped = [Row(k, k, "redis", skipped="redis-server is not installed") for k in
               ("cached-redis", "peer-tutorial", "peer-fastapi-cache", "zipf-redis")]  # fmt: skip
    targets = evaluate(skipped, 50)
    assert {t.verdict for t in targets} == {"not measured"}
    assert {t.measured for t in targets} == {"-"}


def test_a_peer_that_did_not_run_leaves_the_other_as_best() -> None:
    rows = [
        row("cached-redis", 9_000),
        Row("peer-fastapi-cache", "", "redis", skipped="fastapi-cache2 is not installed"),
        row("peer-tutorial", 2_000),
    ]
    peers = by_text(evaluate(rows, 50))["ours (item hit, redis) >= 4x the best peer"]
    assert (peers.measured, peers.met) == ("4.50x (best: tutorial cache-aside, 2,000 req/s)", True)


def test_rows_at_256_connections_have_their_own_labels_and_no_floor_ratio() -> None:
    assert label("slow-cached-many", 50, 1) == "7 cached item GET, 50 ms store, 256 connections"
    assert label("slow-cached", 50, 1) == "7 cached item GET, 50 ms store"
    rows = [row("floor", 20_000), row("slow-cached-many", 10_000, SLOW_CONNECTIONS)]
    set_ratios(rows)
    assert rows[1].ratio is None
    rows = [row("floor", 20_000), row("peer-tutorial", 5_000)]
    set_ratios(rows)
    assert rows[1].ratio == pytest.approx(0.25)


def test_granian_against_uvicorn() -> None:
    floor, item = row("floor", 20_000), row("cached-memory", 8_000)
    g_floor, g_item = row("floor-granian", 25_000), row("cached-granian", 10_000)
    assert server_change(g_floor, floor) == pytest.approx(0.25)
    assert server_change(g_floor, None) is None
    assert server_change(g_floor, Row("floor", "", "-")) is None
    assert _granian([floor, item, g_floor, g_item]) == [
        "granian vs uvicorn, same app and load: floor 25,000 req/s on granian, 20,000 on "
        "uvicorn (+25%); cached item GET 10,000 req/s on granian, 8,000 on uvicorn (+25%).",
        "",
    ]
    assert _granian([floor, item]) == []
