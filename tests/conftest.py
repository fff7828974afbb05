from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.settings import Settings
from tests.support.app import run_app
from tests.support.backends import BACKENDS, open_backend
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tests.support.settings import app_settings
from tests.support.shared_routes import share_route_state

TESTS = Path(__file__).parent

# A test that runs the product or other programs as real processes (redis-server, eventapi
# serve and its CLI, the bench, pip, a container build, a browser) is a system test: marked
# ``system``, so that ``make unit`` leaves it out. A module whose tests start them says so
# (``pytestmark = pytest.mark.system``); a test that asks for one of these fixtures, or is
# parametrised with a cache that starts one ("redis", "redis-cluster"), is marked here. Any
# other test that starts a process
# fails at once, naming it (``_refuse_processes``): the marker cannot be forgotten.
PROCESS_FIXTURES = frozenset({"redis_server", "redis_cluster", "redis_cluster_servers"})
PROCESS_PARAMS = frozenset({"redis", "redis-cluster"})  # a cache on redis-server(s)

# Collected first, in this order (paths under tests/), so that with several workers
# (``make test``) the long tests start early and the short ones fill the gaps, rather than
# one long test running alone at the end. Then the other system tests, then the rest.
LONG_FIRST = (
    "api/conformance",
    "bench/test_bench_smoke.py",
    "deploy/test_image_build.py",
    "deploy/test_requirements.py",
    "bench/test_scale_smoke.py",
    "cache/processes",
    "cache/model",
    "cli/test_import.py",
    "store/test_search.py",
    "cache/faults",
    "cli",
    "docs",
)


def starts_processes(item: pytest.Item) -> bool:
    if item.get_closest_marker("system") is not None:
        return True
    if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(isinstance(v, str) and v in PROCESS_PARAMS for v in params.values())


_current: list[pytest.Item] = []  # the test being set up, run or torn down


class UnmarkedSystemTest(Exception):
    """A test not marked ``system`` started a process."""


def _refuse_processes() -> None:
    """Make ``subprocess.Popen`` (which asyncio's subprocesses use too) refuse to start a
    process for a test not marked ``system``."""
    original = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        if _current and _current[-1].get_closest_marker("system") is None:
            raise UnmarkedSystemTest(
                f"{_current[-1].nodeid} starts a process ({args[0] if args else kwargs}) "
                "but is not marked system: add `pytestmark = pytest.mark.system` to its "
                "module (tests/conftest.py)"
            )
        original(self, *args, **kwargs)

    setattr(subprocess.Popen, "__init__", guarded)  # noqa: B010  (mypy: no method assignment)


def pytest_configure() -> None:
    # A suite started in the background by a shell (`make test &`, a CI runner without a
    # terminal) starts with SIGINT ignored, and every process it starts would inherit that:
    # the tests that stop a CLI with Ctrl-C would then wait in vain. A handler (unlike
    # "ignore") is reset to the default by exec, so the processes started from here on
    # take Ctrl-C as they would from a terminal.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _refuse_processes()
    share_route_state()  # tests/support/shared_routes.py


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _current.append(item)
    try:
        return (yield)
    finally:
        _current.pop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        where = item.path.relative_to(TESTS).as_posix()
        system = starts_processes(item)
        if system:
            item.add_marker(pytest.mark.system)
        for n, prefix in enumerate(LONG_FIRST):
            if where == prefix or where.startswith(prefix.rstrip("/") + "/"):
                return n
        return len(LONG_FIRST) + (0 if system else 1)

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
