"""ical.js, run with node: ``npm ci`` in tests/ical/js when its node_modules is missing or
differs from package-lock.json, then ``expand.mjs`` over an .ics. Without node or npm the
tests that need it skip, except under CI (``CI`` set), where they fail (as the browser tests
do: tests/docs/availability.py)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.docs.availability import on_ci

JS = Path(__file__).parent / "js"
INSTALL = "install Node.js 20 or newer with npm (apt-get install nodejs npm)"

Expand = Callable[[bytes, datetime, datetime], dict[str, Any]]


def _installed() -> bool:
    """Whether node_modules holds every package at the version package-lock.json pins."""
    lock = json.loads((JS / "package-lock.json").read_text())
    for path, entry in lock["packages"].items():
        if not path:
            continue
        manifest = JS / path / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text())["version"] != entry["version"]:
            return False
    return True


def _npm_ci(npm: str) -> None:
    # One npm ci at a time (pytest-xdist workers share the checkout).
    with open(Path(tempfile.gettempdir()) / "eventapi-ical-npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {JS} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def icaljs() -> Expand:
    """A function: (.ics bytes, window start, window end) -> what expand.mjs prints."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = f"{'node' if node is None else 'npm'} is not installed"
        if on_ci():
            pytest.fail(f"{reason}, and CI must run the ical.js tests: {INSTALL}", pytrace=False)
        pytest.skip(f"{reason}. To run the ical.js tests: {INSTALL}")
    if not _installed():
        _npm_ci(npm)

    def expand(ics: bytes, start: datetime, stop: datetime) -> dict[str, Any]:
        done = subprocess.run(
            [node, str(JS / "expand.mjs"), start.isoformat(), stop.isoformat()],
            input=ics,
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "TZ": "UTC"},  # floating times: the host's zone plays no part
        )
        if done.returncode != 0:
            pytest.fail(f"expand.mjs failed:\n{done.stderr.decode()}", pytrace=False)
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    return expand
