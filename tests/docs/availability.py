"""Whether the browser tests can run here: Debian's Chromium and its chromedriver, and
Selenium. Without them the tests skip, saying how to install them, except under CI
(``CI`` set), where they must run and so fail instead."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "`apt-get install -y chromium chromium-driver` (as root), and `make install` (selenium)"


def missing() -> str | None:
    """What is missing, or None."""
    if importlib.util.find_spec("selenium") is None:
        return "the selenium package is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is not installed"
    return None


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_browser() -> None:
    """Call at the top of a test module, before it imports Selenium."""
    reason = missing()
    if reason is None:
        return
    if on_ci():
        pytest.fail(f"{reason}, and CI must run the browser tests: {INSTALL}", pytrace=False)
    pytest.skip(f"{reason}. To run the browser tests: {INSTALL}", allow_module_level=True)
