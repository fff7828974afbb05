"""`python -m bench.follow` end to end with tiny sizes, as a user runs it from the
repository root: the catch-up reads every change once, every stream gets every write's
change (none missed), and the report has each of its parts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.follow import BEGIN, END
from tests.bench.quick import run_report

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


def row(text: str, start: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_tiny_follow_bench_reports_every_change_delivered(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# before\n\n{BEGIN}\nold\n{END}\n\n# after\n")
    args = ["bench.follow", "--events", "200", "--streams", "5", "--rate", "10"]
    text, _ = run_report([*args, "--seconds", "2", "--docs", str(docs)], tmp_path / "f.md", 60)

    changes, distinct, pages, seconds, _ = row(text, "| 200 |")
    assert (changes, distinct, pages) == ("200", "200", "1")
    assert seconds.endswith(" s")
    writes, pairs, arrived, missed, *latencies = row(text, "| 20 |")
    assert (writes, pairs, arrived, missed) == ("20", "100", "100", "0")
    assert all(re.fullmatch(r"-?[\d,]+ ms", cell) for cell in latencies), latencies
    for when in ("before the streams", "5 streams open, before the writes", "2 s after"):
        assert re.fullmatch(r"\d+ MiB", row(text, f"| {when}")[1])
    assert "0 streams were closed by the server before the end" in text
    assert docs.read_text() == f"# before\n\n{BEGIN}\n\n{text}\n{END}\n\n# after\n"
