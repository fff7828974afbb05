"""wrk (Debian package wrk), when it is on PATH: a Lua script picks each request's path at
random from a list file, and its done() prints one parseable line of results."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.client import HOST
from bench.pinning import Pinning
from bench.stats import LoadResult

SCRIPT = """\
local reqs = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then reqs[#reqs + 1] = wrk.format("GET", line) end
  end
  f:close()
  math.randomseed(os.time() * 100 + (id or 0))
end

function request()
  return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), e.connect, e.read, e.write, e.status, e.timeout))
end
"""

_LINE = re.compile(
    r"^BENCH requests=(?P<requests>\d+) duration_us=(?P<duration>\d+) "
    r"p50_us=(?P<p50>[\d.]+) p99_us=(?P<p99>[\d.]+) p999_us=(?P<p999>[\d.]+) "
    r"connect=(?P<connect>\d+) read=(?P<read>\d+) write=(?P<write>\d+) "
    r"status=(?P<status>\d+) timeout=(?P<timeout>\d+)$",
    re.MULTILINE,
)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def version() -> str:
    path = wrk_path()
    if path is None:
        return "not installed"
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def parse(output: str, connections: int) -> LoadResult:
    """The LoadResult in wrk's output (raises ValueError if the BENCH line is missing)."""
    match = _LINE.search(output)
    if match is None:
        raise ValueError(f"no BENCH line in wrk's output:\n{output[-2000:]}")
    n = {k: float(v) for k, v in match.groupdict().items()}
    return LoadResult(
        generator="wrk",
        connections=connections,
        requests=int(n["requests"]),
        elapsed=n["duration"] / 1e6,
        p50=n["p50"] / 1000,
        p99=n["p99"] / 1000,
        p999=n["p999"] / 1000,
        errors=int(n["connect"] + n["read"] + n["write"] + n["timeout"]),
        non_2xx=int(n["status"]),
        server_errors=None,
    )


def run(
    port: int,
    paths: Sequence[str],
    *,
    connections: int,
    duration: float,
    pinning: Pinning,
    workdir: Path,
) -> LoadResult:
    """Drive ``paths`` (chosen at random per request) for ``duration`` (whole seconds)."""
    path = wrk_path()
    if path is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    script, listing = workdir / "bench.lua", workdir / f"paths-{port}.txt"
    script.write_text(SCRIPT)
    listing.write_text("\n".join(paths) + "\n")
    threads = max(1, min(len(pinning.load) or 1, connections))
    seconds = max(1, math.ceil(duration))
    cmd = [*pinning.load_prefix(), path, "-t", str(threads), "-c", str(connections)]
    cmd += ["-d", f"{seconds}s", "--timeout", "10s", "-s", str(script)]
    cmd += [f"http://{HOST}:{port}{paths[0]}", "--", str(listing)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return parse(out.stdout, connections)
