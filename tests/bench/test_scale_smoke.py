"""`python -m bench.scale --quick` end to end on two small databases, as a user runs it from
the repository root: every section of the report is written, and the guarantees it
measures at scale hold here too (no /health fails under the attack; the attackers are
refused; the flood is refused beyond the cap and closed by the time-outs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bench.quick import run_report

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


def row(text: str, start: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_quick_scale_bench_writes_every_section(tmp_path: Path) -> None:
    args = ["bench.scale", "--quick", "--sizes", "200,400"]
    text, _ = run_report(args, tmp_path / "scale.md", 180)

    assert row(text, "| 200 |")[1].endswith(" s")
    assert row(text, "| 400 |")[1].endswith(" s")
    requests = ("| item GET |", "| q=festival |", "| offset = half the events |")
    for request in (*requests, "| cursor half way in |"):
        assert re.fullmatch(r"[\d.,]+ / [\d.,]+", row(text, request)[1]), row(text, request)
    deep = row(text, "| cursor half way in / first page (p50) |")
    assert all(re.fullmatch(r"[\d.]+x", cell) for cell in deep[1:3]), deep
    for phase in ("before", "attack", "after"):
        health = row(text, f"| /health | 5/s | {phase} |")
        assert int(health[3]) > 0, health
        assert health[-1] == "0", health  # never a 503
    attackers = re.search(r"Attackers' answers: (.*?);", text)
    assert attackers is not None
    assert "429" in attackers.group(1) or "503" in attackers.group(1)
    assert "A new connection meanwhile: {503: 20}" in text
    assert "(0 still open at the end of the wait)" in text
    assert "Then 200 GETs one at a time: {200: 200}" in text
