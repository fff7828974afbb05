"""A bench command run end to end as a user runs it from the repository root: a real
subprocess (no EVENTAPI_* or BENCH_* variable of this environment), its report read back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # where `python -m bench` is run from


def run_report(args: list[str], out: Path, timeout: float) -> tuple[str, str]:
    """``python -m <args> --out <out>``: asserts it succeeded; returns what it wrote, and
    its standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTAPI_", "BENCH_"))}
    done = subprocess.run(
        [sys.executable, "-m", *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(), done.stdout
