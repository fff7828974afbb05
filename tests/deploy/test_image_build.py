"""The image's build, without docker: the files the build stage COPYs (as .dockerignore
lets them through) go to a scratch directory standing for the image's filesystem; there a
wheel is built and installed with constraints.txt into the virtualenv the runtime stage
copies, as the build stage's RUN does. Then the image's own ENTRYPOINT and HEALTHCHECK
commands run, with the image's ENV, against that virtualenv.

Needs the package index (PyPI, or the mirror pip is configured with): about 15 s, even
with every wheel downloaded from PyPI. Deselect with -m "not network".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
import pytest

from tests.deploy.files import (
    ROOT,
    DockerIgnore,
    Stage,
    build_stages,
    copies,
    entry_command,
    final_stage,
    health_command,
)
from tests.support.server import Server, free_port, launch

pytestmark = [pytest.mark.network, pytest.mark.system]  # starts real processes

INSTALL_WITHIN = 240  # seconds for one pip command: a hung index fails, it does not hang CI
API_KEY = "deploy-test-key-0123456789abcdef"


@dataclass(frozen=True)
class Image:
    root: Path  # stands for the image's "/"
    venv: Path  # the virtualenv the runtime stage copies from the build stage

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def workdir(self) -> Path:
        runtime = final_stage()
        workdir = self.path(runtime.workdir_at(runtime.instructions[-1]))
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def env(self, **settings: str) -> dict[str, str]:
        """The final stage's ENV over this machine's environment (see host_env), its
        absolute PATH entries moved into the image root, then ``settings``."""
        env = host_env()
        host_path = env.get("PATH", "")
        for name, value in final_stage().env().items():
            value = re.sub(r"\$\{?PATH\}?", lambda _: host_path, value)
            if name == "PATH":
                value = ":".join(
                    str(self.path(entry)) if self.path(entry).exists() else entry
                    for entry in value.split(":")
                    if entry
                )
            env[name] = value
        env.update(settings)
        return env


def host_env() -> dict[str, str]:
    """This machine's environment without what would reach past the image: EVENTAPI_*
    settings, PYTHONPATH, coverage's subprocess hook, the test virtualenv."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("EVENTAPI_", "COVERAGE_", "PYTHON", "VIRTUAL_ENV"))
    }


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_WITHIN, check=False
    )


def place(stage: Stage, root: Path) -> None:
    """Do the stage's COPYs from the build context into ``root``."""
    ignore = DockerIgnore.of_project()
    for c in copies(stage):
        assert "from" not in c.options
        dest = PurePosixPath(stage.workdir_at(c.instruction)) / c.dest
        into_directory = c.dest.endswith("/") or len(c.sources) > 1
        for source in c.sources:
            origin = ROOT / source
            for file in ignore.files(origin, ROOT):
                if origin.is_dir():
                    target = dest / file.relative_to(origin).as_posix()
                elif into_directory:
                    target = dest / file.name
                else:
                    target = dest
                copied = root / str(target).lstrip("/")
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, copied)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image, built once per run: under xdist this module's tests land on several
    workers, and each would otherwise build its own (a minute of pip each). The first to
    get here builds it in the run's shared temporary folder; the others wait on the lock
    and use it. Nothing writes into it afterwards."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "image"
    with (shared / "image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".built").exists():
            return build_image(root, only_paths=True)
        shutil.rmtree(root, ignore_errors=True)  # a build that failed half-way
        root.mkdir()
        built = build_image(root)
        (root / ".built").touch()
        return built


def build_image(root: Path, *, only_paths: bool = False) -> Image:
    """Build the image's venv under ``root`` (``only_paths``: it is built; say where)."""
    (build,) = build_stages()
    if not only_paths:
        place(build, root)
    runs = " && ".join(r.value for r in build.all("RUN"))
    # The steps below are the build stage's RUN, with the paths moved into root.
    for step in ("pip wheel --no-deps", "--only-binary=:all: -c constraints.txt"):
        assert step in runs, f"the build stage no longer runs {step!r}: update this test"
    (venv_copy,) = [c for c in copies(final_stage()) if c.options.get("from") == build.name]
    venv = root / venv_copy.sources[0].lstrip("/")
    if only_paths:
        return Image(root, venv)
    workdir = root / build.workdir_at(build.all("RUN")[-1]).lstrip("/")
    wheels = root / "wheels"
    env = host_env()
    made = run([sys.executable, "-m", "venv", str(venv)], env=env)
    assert made.returncode == 0, made.stderr
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    built = run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), "."], cwd=workdir, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("eventapi-*.whl")
    installed = run(
        [*pip, "install", "--only-binary=:all:", "-c", "constraints.txt", str(wheel)],
        cwd=workdir,
        env=env,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return Image(root, venv)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_gets_the_pinned_versions(image: Image) -> None:
    python = str(image.venv / "bin" / "python")
    listed = run([python, "-m", "pip", "list", "--format=json"], env=host_env())
    versions = {normalized(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[normalized(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert versions.pop("eventapi") == project["version"]
    for tool in ("pip", "setuptools", "wheel"):
        versions.pop(tool, None)
    unpinned = sorted(set(versions) - set(pins))
    assert unpinned == [], f"installed in the image but not pinned in constraints.txt: {unpinned}"
    mismatched = {name: (got, pins[name]) for name, got in versions.items() if got != pins[name]}
    assert mismatched == {}, "installed version, pinned version"


def test_the_console_script_runs(image: Image) -> None:
    helped = run(["eventapi", "serve", "--help"], cwd=image.workdir(), env=image.env())
    assert helped.returncode == 0, helped.stderr
    assert "--workers" in helped.stdout


@contextlib.contextmanager
def entry_point(image: Image, env: dict[str, str], log: Path) -> Iterator[Server]:
    """The image's ENTRYPOINT + CMD, as `docker run` would start it (tests/support/server.py:
    its process group is killed at the end whatever happened)."""
    url = f"http://127.0.0.1:{env['EVENTAPI_PORT']}"
    with launch(entry_command(final_stage()), env, image.workdir(), url, log) as server:
        yield server


def health_check(image: Image, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    _, command = health_command(final_stage())
    return run(command, cwd=image.workdir(), env=env)


def test_the_entry_point_serves_and_the_health_check_sees_it(image: Image, tmp_path: Path) -> None:
    # The files it writes go to this test's folder: the image is shared (see ``image``).
    env = image.env(
        EVENTAPI_PORT=str(free_port()),
        EVENTAPI_DATABASE_URL=f"sqlite:///{tmp_path / 'events.db'}",
        EVENTAPI_CACHE_URL="none",
        EVENTAPI_API_KEYS=API_KEY,
    )
    with entry_point(image, env, tmp_path / "server.log") as server:
        server.wait_ready()
        health = httpx.get(f"{server.url}/health", timeout=5, trust_env=False)
        assert health.status_code == 200
        assert health.json()["store"] == "sqlite"
        # The keys given are in force: a write without one is refused.
        refused = httpx.post(f"{server.url}/api/events", json={}, timeout=5, trust_env=False)
        assert refused.status_code == 401
        checked = health_check(image, env)
        assert checked.returncode == 0, checked.stderr
        assert server.stop(signal.SIGTERM) in {0, -signal.SIGTERM}, server.output()
    assert "Traceback" not in server.output()
    assert health_check(image, env).returncode != 0, "the health check passes with no server"


def test_the_image_refuses_to_serve_without_api_keys(image: Image) -> None:
    env = image.env(EVENTAPI_PORT=str(free_port()), EVENTAPI_CACHE_URL="none")
    refused = run(entry_command(final_stage()), cwd=image.workdir(), env=env)
    assert refused.returncode == 1
    assert "EVENTAPI_API_KEYS" in refused.stderr


def test_the_worker_count_comes_from_the_environment(image: Image) -> None:
    env = image.env(EVENTAPI_API_KEYS=API_KEY, EVENTAPI_CACHE_URL="none", EVENTAPI_WORKERS="0")
    refused = run(entry_command(final_stage()), cwd=image.workdir(), env=env)
    assert refused.returncode == 2
    assert "--workers must be at least 1" in refused.stderr
