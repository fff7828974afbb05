"""The one settings factory: the app's Settings for a test, and the same as the environment of
a server process (`eventapi serve`, `python main.py`).

Both keep the test inside its tmp_path: the SQLite database is a file there, never ./data,
and no EVENTAPI_* variable of the shell running the suite leaks into a server process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventapi.settings import ApiKeys, Settings

# The database file an app or server uses when a test names only a folder.
DB_NAME = "app.db"

# What a server process started by the tests runs with unless told otherwise (``quiet``):
# logs at warning, and room for many list queries from 127.0.0.1 (the load of the system
# tests stands for many clients, all on 127.0.0.1, and they judge what reads return, not
# how many are admitted: tests/ratelimit/test_admission.py covers admission).
QUIET: Mapping[str, object] = {
    "log_level": "warning",
    "list_queries_per_process": 1000,
    "list_queries_per_client": 1000,
}


def database_url(where: Path | str) -> str:
    """``sqlite:///`` URL of ``where``: a ``.db`` file, or the folder to put app.db in."""
    path = Path(where)
    if path.suffix != ".db":
        path = path / DB_NAME
    return f"sqlite:///{path.resolve()}"  # four slashes: an absolute path


def app_settings(where: Path | str | None = None, /, **fields: Any) -> Settings:
    """Settings for an app in this process: SQLite in ``where`` (a folder, or a ``.db`` file;
    None: a database the test never opens), the cache in process memory, and ``fields``.

    ``api_keys`` may be given as the comma-separated string the environment variable takes.
    """
    fields.setdefault(
        "database_url", database_url(where) if where is not None else "sqlite:///unused.db"
    )
    fields.setdefault("cache_url", "memory://")
    if isinstance(fields.get("api_keys"), str):
        fields["api_keys"] = ApiKeys.parse(fields["api_keys"])
    return Settings(**fields)


def clean_env(**variables: str) -> dict[str, str]:
    """The current environment without any EVENTAPI_* variable, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTAPI_")}
    env.update(variables)
    return env


def env_vars(**fields: object) -> dict[str, str]:
    """Settings fields as the environment variables that set them (``store_timeout=1`` ->
    ``EVENTAPI_STORE_TIMEOUT=1``; booleans as ``true``/``false``)."""
    return {
        f"EVENTAPI_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in fields.items()
    }


def server_env(
    where: Path | str | None = None,
    cache_url: str | None = None,
    quiet: bool = True,
    /,
    **fields: object,
) -> dict[str, str]:
    """The environment of one server process or CLI command: no inherited EVENTAPI_*
    variable; SQLite in ``where`` (a folder, or a ``.db`` file; None: the product's
    default, or a ``database_url`` field); ``cache_url`` if given; the ``QUIET`` defaults
    unless ``quiet`` is false; then ``fields`` (``store_timeout=1`` ->
    ``EVENTAPI_STORE_TIMEOUT=1``)."""
    chosen: dict[str, object] = dict(QUIET) if quiet else {}
    if where is not None:
        chosen["database_url"] = database_url(where)
    if cache_url is not None:
        chosen["cache_url"] = cache_url
    chosen.update(fields)
    return clean_env(**env_vars(**chosen))
