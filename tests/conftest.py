from __future__ import annotations

import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.settings import Settings
from tests.support.app import run_app
from tests.support.backends import BACKENDS, open_backend
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tests.support.settings import app_settings

TESTS = Path(__file__).parent
# Folders whose tests run the product or other programs as real processes (eventapi serve
# and its CLI, the bench, pip, a container build, a browser): marked ``system``, so that
# ``make unit`` leaves them out. Listed longest first: they are also collected first, so
# that with several workers (``make test``) the long ones start early and the short ones
# fill the gaps, rather than one long test running alone at the end.
SYSTEM_FOLDERS = ("bench", "conformance", "deploy", "multiprocess", "faults", "cli", "browser")


def pytest_configure() -> None:
    # A suite started in the background by a shell (`make test &`, a CI runner without a
    # terminal) starts with SIGINT ignored, and every process it starts would inherit that:
    # the tests that stop a CLI with Ctrl-C would then wait in vain. A handler (unlike
    # "ignore") is reset to the default by exec, so the processes started from here on
    # take Ctrl-C as they would from a terminal.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in SYSTEM_FOLDERS:
            item.add_marker(pytest.mark.system)
            return SYSTEM_FOLDERS.index(folder)
        return len(SYSTEM_FOLDERS)

    items.sort(key=rank)  # stable: each module's tests stay together and in order


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Why tests were skipped, counted by reason (the list of every skip is long)."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple):
            reasons[str(longrepr[2]).removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("skip reasons")
        for reason, count in reasons.most_common():
            terminalreporter.line(f"{count:6d}  {reason}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[EventStore]:
    async with open_backend(backend, tmp_path) as opened:
        yield opened


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return app_settings(tmp_path)


@pytest.fixture(params=[True, False], ids=["fast-path", "routed"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    """GET /api/events/{id} through the ASGI fast path, or through the FastAPI route: the
    API suite runs both ways, so the two stay one contract."""
    on: bool = request.param
    return on


@pytest.fixture
async def client(
    store: EventStore, settings: Settings, fast_path: bool
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, lifespan included, over the parametrised store backend."""
    async with run_app(settings, store, fast_path=fast_path) as running:
        yield running.http


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for this test (killable, pausable, restartable)."""
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_cluster_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterServers]:
    """A private three-master Redis Cluster shared by the tests of one module (forming one
    takes a second or two); use ``redis_cluster``, which empties it for each test."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster(redis_cluster_servers: RedisClusterServers) -> RedisClusterServers:
    """The module's Redis Cluster, every node up and empty."""
    redis_cluster_servers.flush()
    return redis_cluster_servers
