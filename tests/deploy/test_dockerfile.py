"""The Dockerfile, read without docker (no image can be pulled on the machines this project
is built on): its stages, user, health check, entry point, and what it copies."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy.files import (
    ROOT,
    Copy,
    DockerIgnore,
    build_stages,
    console_scripts,
    copies,
    entry_command,
    exec_form,
    final_stage,
    health_command,
    parse_dockerfile,
    stages,
)

ROOT_USERS = {"root", "0"}


def served_command() -> list[str]:
    """The entry point's command line, through the `sh -c "exec ..."` it may use to expand
    environment variables."""
    words = entry_command(final_stage())
    if words[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        words = shlex.split(words[2])
        if words[0] == "exec":
            words = words[1:]
    return words


def option(words: list[str], name: str) -> str:
    assert name in words, f"{name} missing from {words}"
    return words[words.index(name) + 1]


def test_the_parser_reads_stages_continuations_and_args() -> None:
    parsed = parse_dockerfile(
        "# comment\nARG BASE=python:3.11-slim\nFROM ${BASE} AS one\n"
        "RUN a \\\n  # inside\n  && b\n\nFROM one\nUSER 1:1\n"
    )
    assert [(s.image, s.name) for s in parsed] == [("python:3.11-slim", "one"), ("one", None)]
    assert parsed[0].instructions[0].value == "a   && b"
    assert parsed[1].last("USER") is not None
    assert exec_form('["a", "b"]') == ["a", "b"]
    assert exec_form("a b") is None


def test_build_and_runtime_are_separate_stages_on_a_slim_image() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "not a multi-stage build"
    runtime = final_stage()
    assert "slim" in runtime.image, f"the runtime image {runtime.image!r} is not a slim one"
    assert build_stages(), "the final stage copies nothing from a build stage"
    # Nothing is compiled or built in the runtime stage: it only copies the build's result.
    for run in runtime.all("RUN"):
        assert "pip " not in run.value, f"line {run.line}: pip in the runtime stage"


def test_the_build_stage_builds_a_wheel_with_the_pinned_dependencies() -> None:
    (build,) = build_stages()
    copied = {source for c in copies(build) for source in c.sources}
    assert {"pyproject.toml", "constraints.txt", "src"} <= copied
    commands = " && ".join(run.value for run in build.all("RUN"))
    assert re.search(r"pip wheel --no-deps\b", commands), "no wheel of the project is built"
    assert "-c constraints.txt" in commands, "the install does not use constraints.txt"


def test_the_server_does_not_run_as_root() -> None:
    user = final_stage().last("USER")
    assert user is not None, "no USER in the final stage: the server would run as root"
    name, _, group = user.value.partition(":")
    assert name not in ROOT_USERS, f"line {user.line}: USER {user.value}"
    assert group not in ROOT_USERS, f"line {user.line}: USER {user.value}"


def test_the_health_check_asks_health_without_curl() -> None:
    runtime = final_stage()
    flags, command = health_command(runtime)
    assert command[0] == "python", f"{command[0]}: slim images have no curl or wget"
    assert re.search(r"/health(?![\w/-])", " ".join(command)), command
    assert {"interval", "timeout"} <= set(flags)
    # It reads the port the server listens on, which the image sets.
    assert "EVENTAPI_PORT" in command[-1]
    assert "EVENTAPI_PORT" in runtime.env()


def test_the_entry_point_is_the_console_script_serving_on_all_interfaces() -> None:
    words = served_command()
    assert words[0] in console_scripts(), f"{words[0]} is not in [project.scripts]"
    assert words[1] == "serve"
    assert option(words, "--host") == "0.0.0.0"
    # The worker count comes from an environment variable that the image gives a default.
    workers = option(words, "--workers")
    match = re.fullmatch(r"\$\{?(\w+)\}?", workers)
    assert match, f"--workers {workers}: not an environment variable"
    env = final_stage().env()
    assert match.group(1) in env, f"{match.group(1)} has no default (ENV) in the image"
    assert int(env[match.group(1)]) >= 1


def test_the_image_runs_in_production_mode() -> None:
    env = final_stage().env()
    assert env.get("EVENTAPI_ENV") == "production"
    # The console script comes from the virtualenv the build stage made and the final
    # stage copied.
    venvs = {c.dest for c in copies(final_stage()) if "from" in c.options}
    assert any(env["PATH"].startswith(f"{venv}/bin:") for venv in venvs), env["PATH"]


def context_copies() -> list[Copy]:
    """Every COPY/ADD of the Dockerfile that takes files from the build context."""
    return [c for stage in stages() for c in copies(stage) if "from" not in c.options]


@pytest.mark.parametrize(
    "copy",
    context_copies(),
    ids=lambda c: f"line{c.instruction.line}",
)
def test_every_copied_path_is_in_the_context(copy: Copy) -> None:
    ignore = DockerIgnore.of_project()
    assert copy.instruction.keyword == "COPY", f"line {copy.instruction.line}: use COPY"
    for source in copy.sources:
        assert not any(char in source for char in "*?["), f"{source}: name it exactly"
        path = ROOT / source
        assert path.exists(), f"line {copy.instruction.line}: {source} does not exist"
        assert not ignore.excluded(source), f"{source} is excluded by .dockerignore"
        assert ignore.files(path, ROOT), f"{source}: .dockerignore leaves nothing of it"


def test_copies_from_other_stages_name_earlier_stages() -> None:
    all_stages = stages()
    for index, stage in enumerate(all_stages):
        earlier = {s.name for s in all_stages[:index]}
        for c in copies(stage):
            if "from" in c.options:
                assert c.options["from"] in earlier, f"line {c.instruction.line}"


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        (".git/HEAD", True),
        (".venv/bin/python", True),
        ("data/events.db", True),
        (".mypy_cache/3.11/x.json", True),
        (".ruff_cache/CACHEDIR.TAG", True),
        (".pytest_cache/v/cache/lastfailed", True),
        (".hypothesis/examples/x", True),
        (".coverage", True),
        (".coverage.host.1234", True),
        ("htmlcov/index.html", True),
        ("src/eventapi.egg-info/PKG-INFO", True),
        ("src/eventapi/__pycache__/app.cpython-311.pyc", True),
        ("src/eventapi/cache/x.pyc", True),
        ("build/lib/eventapi/app.py", True),
        (".env", True),
        ("src/eventapi/app.py", False),
        ("src/eventapi/py.typed", False),
        ("pyproject.toml", False),
        ("constraints.txt", False),
        ("README.md", False),
    ],
)
def test_dockerignore_leaves_out_local_state(path: str, excluded: bool) -> None:
    assert DockerIgnore.of_project().excluded(path) is excluded


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("data", "data/x.db", True),
        ("data", "src/data/x.db", False),
        ("/data/", "data", True),
        ("**/__pycache__", "__pycache__/a.pyc", True),
        ("**/__pycache__", "a/b/__pycache__/c.pyc", True),
        ("*.md", "README.md", True),
        ("*.md", "docs/x.md", False),
        ("**/*.md", "docs/x.md", True),
        ("*.py[cod]", "a.pyc", True),
        ("*.py[cod]", "a.py", False),
        ("docs\n!docs/keep.md", "docs/keep.md", False),
        ("docs\n!docs/keep.md", "docs/other.md", True),
        ("!docs/keep.md\ndocs", "docs/keep.md", True),  # the last match decides
        ("# data", "data/x", False),
    ],
)
def test_the_dockerignore_matcher_follows_docker(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excluded(path) is excluded
