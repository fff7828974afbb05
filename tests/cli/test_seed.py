"""`python seed_db.py` / `eventapi seed`: flags, the interactive menu, and bad settings."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from eventapi.events.samples import SAMPLE_EVENTS
from eventapi.settings import Settings
from eventapi.storage.factory import open_store
from tests.support.api import MUSIC_FESTIVAL
from tests.support.server import EVENTAPI, MAIN, PYTHON, SEED_DB, free_port, read_until, run

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

INSERTED = re.compile(r"Inserted (\d+) sample events \((\d+) already present\)")
HOLDS = re.compile(r"holds (\d+) events")
DELETED = re.compile(r"Deleted (\d+) events")
N = len(SAMPLE_EVENTS)


def numbers(pattern: re.Pattern[str], text: str) -> list[tuple[int, ...]]:
    return [tuple(int(g) for g in m.groups()) for m in pattern.finditer(text)]


def seed(env: dict[str, str], cwd: Path, *flags: str, stdin: str = "") -> str:
    done = run([PYTHON, SEED_DB, *flags], env, cwd, stdin)
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout


def test_samples_cover_the_readme_examples_and_several_categories() -> None:
    assert N >= 12
    assert len({e.id for e in SAMPLE_EVENTS}) == N
    assert len({e.category for e in SAMPLE_EVENTS}) >= 5
    by_title = {e.title: e for e in SAMPLE_EVENTS}
    assert {"Tech Conference 2025", "Music Festival", "Workshop 2025"} <= by_title.keys()
    festival = by_title["Music Festival"].model_dump(mode="json")
    assert {key: festival[key] for key in MUSIC_FESTIVAL} == MUSIC_FESTIVAL


@pytest.fixture
def seeded(env: dict[str, str], tmp_path: Path, db_file: Path) -> str:
    """`seed_db.py --insert-samples` on an empty database; its output."""
    out = seed(env, tmp_path, "--insert-samples")
    assert db_file.is_file()  # the setting was honoured: nothing went to ./data
    return out


async def test_insert_samples_stores_every_sample(seeded: str, env: dict[str, str]) -> None:
    assert numbers(INSERTED, seeded) == [(N, 0)]
    async with open_store(Settings(database_url=env["EVENTAPI_DATABASE_URL"])) as store:
        assert await store.count() == N
        for sample in SAMPLE_EVENTS:
            stored = await store.get(sample.id)
            assert stored is not None
            # Stamped when the seed made them.
            assert stored.created_at is not None
            assert stored.created_at == stored.updated_at
            assert stored.model_copy(update={"created_at": None, "updated_at": None}) == sample


def test_insert_samples_twice_adds_nothing(env: dict[str, str], tmp_path: Path) -> None:
    seed(env, tmp_path, "--insert-samples")
    out = seed(env, tmp_path, "--insert-samples", "--count")
    assert numbers(INSERTED, out) == [(0, N)]
    assert numbers(HOLDS, out) == [(N,)]


def test_count_and_clear(env: dict[str, str], tmp_path: Path) -> None:
    assert numbers(HOLDS, seed(env, tmp_path, "--count")) == [(0,)]
    seed(env, tmp_path, "--insert-samples")
    assert numbers(HOLDS, seed(env, tmp_path, "--count")) == [(N,)]
    out = seed(env, tmp_path, "--clear", "--count")
    assert numbers(DELETED, out) == [(N,)]
    assert numbers(HOLDS, out) == [(0,)]


def test_menu_insert_count_quit(env: dict[str, str], tmp_path: Path) -> None:
    out = seed(env, tmp_path, stdin="1\n3\n4\n")
    assert "1. Insert the sample events" in out
    assert "4. Quit" in out
    assert numbers(INSERTED, out) == [(N, 0)]
    assert numbers(HOLDS, out) == [(N,)]


@pytest.mark.parametrize("stdin", ["", "3\n"], ids=["empty", "no-quit"])
def test_menu_ends_cleanly_at_end_of_input(env: dict[str, str], tmp_path: Path, stdin: str) -> None:
    out = seed(env, tmp_path, stdin=stdin)  # asserts exit 0 and an empty stderr
    assert out.count("4. Quit") == len(stdin.splitlines()) + 1


def test_menu_unknown_option_keeps_going(env: dict[str, str], tmp_path: Path) -> None:
    out = seed(env, tmp_path, stdin="7\n1\n2\ny\n3\n4\n")
    assert "Unknown option '7'" in out
    assert numbers(INSERTED, out) == [(N, 0)]
    assert numbers(DELETED, out) == [(N,)]
    assert numbers(HOLDS, out) == [(0,)]
    assert out.index("Unknown option") < out.index("Inserted")


def test_without_a_shared_cache_the_seeder_says_how_servers_catch_up(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = seed({**env, "EVENTAPI_CACHE_URL": "memory://"}, tmp_path, "--insert-samples")
    assert "running servers drop what they have cached through the change log" in out
    assert "Note" not in seed({**env, "EVENTAPI_CACHE_URL": "none"}, tmp_path, "--clear")


@pytest.mark.parametrize("answer", ["y", "YES"])
def test_menu_delete_all_deletes_once_confirmed(
    env: dict[str, str], tmp_path: Path, answer: str
) -> None:
    out = seed(env, tmp_path, stdin=f"1\n2\n{answer}\n3\n4\n")
    assert f"Delete all {N} events? This cannot be undone. [y/N]" in out
    assert numbers(DELETED, out) == [(N,)]
    assert numbers(HOLDS, out) == [(0,)]


@pytest.mark.parametrize("answer", ["", "n", "no", "3"], ids=["enter", "n", "no", "other"])
def test_menu_delete_all_without_yes_deletes_nothing(
    env: dict[str, str], tmp_path: Path, answer: str
) -> None:
    out = seed(env, tmp_path, stdin=f"1\n2\n{answer}\n3\n4\n")
    assert "[y/N]" in out
    assert "Nothing deleted." in out
    assert numbers(DELETED, out) == []
    assert numbers(HOLDS, out) == [(N,)]


def test_menu_delete_all_at_end_of_input_deletes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = seed(env, tmp_path, stdin="1\n2\n")  # asserts exit 0 and an empty stderr
    assert "Nothing deleted." in out
    assert numbers(HOLDS, seed(env, tmp_path, "--count")) == [(N,)]


def test_clear_flag_does_not_ask(env: dict[str, str], tmp_path: Path) -> None:
    seed(env, tmp_path, "--insert-samples")
    out = seed(env, tmp_path, "--clear", stdin="n\n")
    assert "[y/N]" not in out
    assert numbers(DELETED, out) == [(N,)]


def test_menu_ctrl_c_at_the_prompt_exits_promptly(env: dict[str, str], tmp_path: Path) -> None:
    """As in a terminal: stdin stays open, the user presses Ctrl-C at the prompt."""
    pipe = subprocess.PIPE
    with subprocess.Popen(
        [PYTHON, SEED_DB], env=env, cwd=tmp_path, stdin=pipe, stdout=pipe, stderr=pipe
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            read_until(proc.stdout, b"Choose an option")
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("seed_db.py still running 5 s after Ctrl-C at the menu prompt")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        stderr = proc.stderr.read().decode()
    assert "Traceback" not in stderr, stderr
    assert code in {0, 130, -signal.SIGINT}


def test_eventapi_seed_matches_seed_db(env: dict[str, str], tmp_path: Path) -> None:
    done = run([EVENTAPI, "seed", "--insert-samples", "--count"], env, tmp_path)
    assert (done.returncode, done.stderr) == (0, ""), done
    assert numbers(INSERTED, done.stdout) == [(N, 0)]
    assert numbers(HOLDS, done.stdout) == [(N,)]
    assert (
        seed(env, tmp_path, "--count") == run([EVENTAPI, "seed", "--count"], env, tmp_path).stdout
    )


@pytest.mark.parametrize("args", [[], ["bogus"]], ids=["none", "unknown"])
def test_eventapi_without_a_command_prints_usage(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    done = run([EVENTAPI, *args], env, tmp_path)
    assert done.returncode != 0
    assert done.stderr.startswith("usage: eventapi")
    assert "serve" in done.stderr
    assert "seed" in done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("EVENTAPI_DATABASE_URL", "ftp://x"), ("EVENTAPI_PORT", "abc")],
)
@pytest.mark.parametrize(
    "command",
    [[PYTHON, MAIN], [EVENTAPI, "seed", "--count"], [PYTHON, SEED_DB, "--count"]],
    ids=["main.py", "eventapi-seed", "seed_db.py"],
)
def test_bad_setting_is_one_line_on_stderr(
    env: dict[str, str], tmp_path: Path, command: list[str], name: str, value: str
) -> None:
    done = run(command, {**env, name: value}, tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert name in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "command",
    [[PYTHON, MAIN], [EVENTAPI, "seed", "--count"]],
    ids=["main.py", "eventapi-seed"],
)
def test_unusable_database_is_reported_without_traceback(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "a-file").touch()
    bad_url = f"sqlite:///{tmp_path}/a-file/events.db"  # its "directory" is a regular file
    settings = {"EVENTAPI_DATABASE_URL": bad_url, "EVENTAPI_PORT": str(free_port())}
    done = run(command, {**env, **settings}, tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "a-file" in done.stderr or "EVENTAPI_DATABASE_URL" in done.stderr
