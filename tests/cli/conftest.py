from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.settings import clean_env


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def env(db_file: Path) -> dict[str, str]:
    """Environment for a subprocess: the database is a file under tmp_path, never ./data."""
    return clean_env(EVENTAPI_DATABASE_URL=f"sqlite:///{db_file}")
