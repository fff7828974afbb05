"""Fixtures of the browser tests that need no browser: the real server and where the
screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.server import docs_server
from tests.support.server import Server

SCREENSHOTS = "EVENTAPI_SCREENSHOTS"  # a directory that gets a copy of every screenshot


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with docs_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Where a module's screenshots go: a new directory under pytest's basetemp
    (``screenshots0``, ``screenshots1``...), and $EVENTAPI_SCREENSHOTS when it is set."""
    directories = [tmp_path_factory.mktemp("screenshots")]
    extra = os.environ.get(SCREENSHOTS)
    if extra:
        directories.append(Path(extra))
        directories[-1].mkdir(parents=True, exist_ok=True)
    return directories
