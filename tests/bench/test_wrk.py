"""wrk's output parser on captured text, and (when wrk is installed) a real short run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import server, wrk
from bench.client import Counters, Delta
from bench.pinning import Pinning

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

SAMPLE = """\
Running 1s test @ http://127.0.0.1:18555/api/events/68ed254e36d0233aa05afbe9
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.65ms  601.49us  25.08ms   96.84%
    Req/Sec    39.45k   822.96    40.56k    60.00%
  39176 requests in 1.00s, 12.37MB read
Requests/sec:  39098.51
Transfer/sec:     12.34MB
BENCH requests=39176 duration_us=1001982 p50_us=1580.0 p99_us=3093.0 p999_us=11850.0 \
connect=0 read=2 write=0 status=7 timeout=1
"""


def test_parse_captured_output() -> None:
    result = wrk.parse(SAMPLE, connections=64)
    assert result.generator == "wrk"
    assert result.requests == 39176
    assert result.elapsed == pytest.approx(1.001982)
    assert result.rps == pytest.approx(39098.5, rel=1e-3)
    assert (result.p50, result.p99, result.p999) == pytest.approx((1.58, 3.093, 11.85))
    assert (result.errors, result.non_2xx, result.server_errors) == (3, 7, None)


def test_parse_without_the_bench_line_fails() -> None:
    with pytest.raises(ValueError, match="no BENCH line"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n", connections=1)


@pytest.mark.skipif(wrk.wrk_path() is None, reason="wrk is not installed")
def test_real_wrk_run_against_the_floor(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTAPI_")}
    pinning = Pinning.plan(enabled=False)
    with server.uvicorn(server.FLOOR, env, tmp_path, pinning) as port:
        result = wrk.run(
            port, ["/a", "/b"], connections=4, duration=1, pinning=pinning, workdir=tmp_path
        )
    assert result.requests > 100
    assert result.errors == result.non_2xx == 0
    assert 0 < result.p50 <= result.p99 <= result.p999


METRICS = """\
# HELP eventapi_store_operations_total Store calls by operation
# TYPE eventapi_store_operations_total counter
eventapi_store_operations_total{operation="get"} 12.0
eventapi_store_operations_total{operation="list"} 3.0
eventapi_store_operations_total{operation="update"} 5.0
eventapi_cache_requests_total{outcome="hit",route="item"} 90.0
eventapi_cache_requests_total{outcome="miss",route="item"} 10.0
eventapi_cache_requests_total{outcome="hit",route="list"} 4.0
"""


def test_metrics_counters_and_deltas() -> None:
    after = Counters.parse(METRICS)
    assert after.store_reads() == 15
    delta = Delta.between(Counters.parse(""), after, "item")
    assert (delta.store_reads, delta.hits, delta.lookups) == (15, 90, 100)
    assert delta.hit_ratio == pytest.approx(0.9)
