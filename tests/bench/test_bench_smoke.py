"""`python -m bench --quick` end to end, as a user runs it from the repository root: a real
subprocess that starts its own servers, writes the Markdown report and the SVG chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.results import ALWAYS, NEEDS_REDIS, label
from bench.server import REDIS_SERVER
from tests.bench.quick import run_report

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


def test_quick_bench_writes_every_scenario(tmp_path: Path) -> None:
    text, stdout = run_report(["bench", "--quick", "--loadgen", "python"], tmp_path / "b.md", 240)
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in text.splitlines()}
    for key in ALWAYS:
        assert label(key, 50, 1) in rows, f"no row for {key}"
        assert "skipped" not in rows[label(key, 50, 1)] or key in NEEDS_REDIS
    assert ("redis-server is not installed" in text) == (REDIS_SERVER is None)
    peers = [line for line in text.splitlines() if line.startswith("| 10 peer: ")]
    assert len(peers) == 2
    for line in peers:
        if REDIS_SERVER is not None:
            assert "bench/peers.py" in line
            assert "skipped" not in line, line
            assert re.search(r"\| redis \| python \| 64 \| [\d,]+ \|", line), line
    granian = [line for line in text.splitlines() if "on granian | " in line]
    assert len(granian) == 2
    assert all("req/s vs the same on uvicorn" in line for line in granian)
    assert "granian vs uvicorn, same app and load: floor " in text
    for conns in (64, 256):  # the slow store at both connection counts
        assert re.search(
            rf"\| 7 uncached item GET, 50 ms store[^|]* \| none \| python \| {conns} \|", text
        )
    zipf = [line for line in text.splitlines() if line.startswith("| 4 Zipf")]
    # In-process cache, Redis, two server processes on Redis, and those with the hot ids'
    # writes racing (stale judged in commit order).
    assert len(zipf) == 4
    for line in zipf:
        if "skipped" not in line:
            assert "stale reads: 0;" in line, line
    writers = next(line for line in zipf if "concurrent writers" in line)
    if REDIS_SERVER is not None:  # several writes of one id were in flight at once
        racing = re.search(r"up to (\d+) writes of one id in flight, (\d+) sent while", writers)
        assert racing, writers
        assert int(racing[1]) >= 2, writers
        assert int(racing[2]) > 0, writers
    stampedes = [line for line in text.splitlines() if line.startswith("| 5 cold-key")]
    assert stampedes
    for line in stampedes:
        if "skipped" not in line:
            assert re.search(r"store reads: \d+;", line), line
    assert "## Targets (issue 11)" in text
    assert "ours (item hit, redis) >= 4x the best peer" in text
    assert "eventapi.http.connections:HeaderTimeoutProtocol" in text  # the floor's protocol
    assert "pinning" in text
    assert "(b.svg)" in text
    svg = tmp_path / "b.svg"
    assert svg.read_text().startswith("<svg")
    assert "Zipf" in stdout  # the table on stdout too
