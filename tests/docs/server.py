"""A real `eventapi serve` for the browser tests, started the way a user starts it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import EVENTAPI, Server, run, serve
from tests.support.settings import server_env

KEY = "browser-test-key-0123456789abcdef"


@contextmanager
def docs_server(workdir: Path, **settings: str) -> Iterator[Server]:
    """`eventapi serve` with the API key KEY and ``settings`` (``public_reads="false"`` ->
    ``EVENTAPI_PUBLIC_READS=false``), on a database seeded with the sample events by
    `eventapi seed --insert-samples`; ready when it returns."""
    env = server_env(workdir / "events.db", "memory://", api_keys=KEY, **settings)
    seeded = run([EVENTAPI, "seed", "--insert-samples"], env, workdir)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    with serve(workdir, "docs", env) as server:
        server.wait_ready()
        yield server
