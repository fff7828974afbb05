"""A newcomer's first mistakes each get one clear line (issue 18): the commands run before
the dependencies are installed, a misspelt setting, a database folder that does not exist,
and a start-up log that says which database and which cache it uses (never a password)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import EVENTAPI, ROOT, free_port, main_py, run
from tests.support.settings import clean_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


def test_main_py_before_the_dependencies_are_installed_says_what_to_run(tmp_path: Path) -> None:
    """A clone without .venv, run by a Python that has none of the dependencies."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True)
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("main.py", "seed_db.py", "_venv.py"):
        shutil.copy(ROOT / name, clone / name)
    (clone / "src").symlink_to(ROOT / "src")
    for script in ("main.py", "seed_db.py"):
        done = run([str(bare / "bin" / "python"), script], clean_env(), clone)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"{script}: the dependencies are not installed")
        assert "make install" in lines[0]


def test_a_misspelt_setting_is_named_with_the_closest_one(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    env = clean_env(
        EVENTAPI_DATABSE_URL="sqlite:////somewhere/else.db",
        EVENTAPI_DATABASE_URL=f"sqlite:///{db}",
    )
    done = run([EVENTAPI, "export", "-o", str(tmp_path / "out.jsonl")], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "eventapi: warning: EVENTAPI_DATABSE_URL is not a setting and is ignored "
        "(did you mean EVENTAPI_DATABASE_URL?)"
    ) in done.stderr


def test_a_sqlite_file_in_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    env = clean_env(EVENTAPI_DATABASE_URL=f"sqlite:///{missing}/x.db")
    done = run([EVENTAPI, "seed", "--insert-samples"], env, tmp_path)
    assert done.returncode == 1, done
    assert done.stderr.strip().splitlines() == [
        f"eventapi: EVENTAPI_DATABASE_URL: cannot open the SQLite database "
        f"'{missing}/x.db': its folder '{missing}' does not exist (create it, or fix the path)"
    ]
    assert not (tmp_path / "no").exists()


def test_the_default_database_folder_is_made(tmp_path: Path) -> None:
    """The default file (data/events.db, relative to where the command runs) is ours: its
    folder is made."""
    done = run([EVENTAPI, "seed", "--insert-samples"], clean_env(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "events.db").is_file()


def test_the_start_up_log_names_the_database_file_and_the_cache_without_its_password(
    tmp_path: Path,
) -> None:
    port = free_port()
    cache = f"redis://:s3cret-word@127.0.0.1:{free_port()}/0"  # nobody listens: degraded
    env = clean_env(
        EVENTAPI_DATABASE_URL="sqlite:///app.db",
        EVENTAPI_CACHE_URL=cache,
        EVENTAPI_PORT=str(port),
    )
    with main_py(env, tmp_path, f"http://127.0.0.1:{port}") as server:
        server.wait_ready()
        log = server.output()
        server.stop(signal.SIGTERM)
    assert f"event store: SQLite file {tmp_path.resolve() / 'app.db'}" in log
    assert f"cache: {cache.replace(':s3cret-word@', ':***@')} (EVENTAPI_CACHE_URL)" in log
    assert "s3cret-word" not in log
