"""The upgrade fixtures: databases written by the previous release's own code, and helpers
to use them. make_fixtures.py makes them (see there); the manifest says what they hold.

Tests never open the committed files themselves: copy_sqlite copies the SQLite database,
load_mongo inserts the MongoDB dump into a database the test owns.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

# The release whose databases the next release must upgrade without losing anything.
PREVIOUS_RELEASE: str = "0410a266956bce466564f5a492d1f0503fc2e674"
# The release just before this one (schema version 2: before the change feed), which a
# rolling upgrade runs beside this one (tests/cache/processes/test_rolling_upgrade.py).
LAST_RELEASE: str = "adf177316b03b0e62a19e1f175a6edf60cacdda8"
FIXTURES: Path = Path(__file__).resolve().parent / "fixtures"
REPO_ROOT: Path = Path(__file__).resolve().parents[3]

SQLITE: Path = FIXTURES / "previous.sqlite3"
MONGO: Path = FIXTURES / "previous.mongo.json"
EXPORT: Path = FIXTURES / "previous.export.jsonl"
MANIFEST: Path = FIXTURES / "previous.manifest.json"


class ReleaseUnavailable(Exception):
    """PREVIOUS_RELEASE cannot be read from git here (no git, not a clone, a shallow one)."""


def manifest() -> dict[str, Any]:
    """What the fixtures hold (a fresh copy each call: tests may change it)."""
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def copy_sqlite(tmp_path: Path) -> Path:
    """A copy of the SQLite fixture in ``tmp_path``, for a test to open and upgrade."""
    copy = tmp_path / SQLITE.name
    shutil.copyfile(SQLITE, copy)
    return copy


def mongo_dump() -> dict[str, Any]:
    """The MongoDB fixture as BSON values (ObjectIds, aware UTC datetimes): {"database":
    name, "collections": {name: {"indexes": index_information(), "documents": [...]}}}."""
    from bson import json_util

    options = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=datetime.UTC)
    dump: dict[str, Any] = json_util.loads(MONGO.read_text(encoding="utf-8"), json_options=options)
    return dump


async def load_mongo(database: Any) -> None:
    """Insert every collection of the MongoDB fixture into ``database`` (mongomock-motor's
    AsyncMongoMockDatabase or PyMongo's AsyncDatabase), with its indexes but ``_id_``."""
    for name, collection in mongo_dump()["collections"].items():
        target = database[name]
        if collection["documents"]:
            await target.insert_many(collection["documents"])
        for index, spec in collection["indexes"].items():
            if index == "_id_":
                continue
            keys = [(field, direction) for field, direction in spec["key"]]
            if spec.get("unique"):
                await target.create_index(keys, unique=True)
            else:
                await target.create_index(keys)


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("git") is None:
        raise ReleaseUnavailable("git is not installed")
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, check=False)


def extract_previous_release(into: Path, release: str = PREVIOUS_RELEASE) -> Path:
    """``git archive <release> src | tar -x -C into``; returns ``into/src`` (the folder to
    put on PYTHONPATH). Raises ReleaseUnavailable if git cannot give it."""
    found = _git("cat-file", "-e", f"{release}^{{commit}}")
    if found.returncode != 0:
        reason = found.stderr.decode(errors="replace").strip()
        raise ReleaseUnavailable(
            f"commit {release} is not in {REPO_ROOT} (a shallow clone? run "
            f"`git fetch --unshallow`){': ' + reason if reason else ''}"
        )
    archive = _git("archive", "--format=tar", release, "src")
    if archive.returncode != 0:
        raise ReleaseUnavailable(
            f"git archive {release} src failed: {archive.stderr.decode().strip()}"
        )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    src = into / "src"
    if not (src / "eventapi" / "__init__.py").is_file():
        raise ReleaseUnavailable(f"{release}'s src/ has no eventapi package")
    return src


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def previous_release_src(tmp_path: Path, release: str = PREVIOUS_RELEASE) -> Path:
    """``release``'s src/, extracted into ``tmp_path``: the path to put on PYTHONPATH to
    run that release. Skips the test where git or the commit is missing (a shallow clone),
    but fails it under CI (CI=true), where the fixtures must be checked."""
    try:
        return extract_previous_release(tmp_path / "previous-release", release)
    except ReleaseUnavailable as exc:
        if _in_ci():
            pytest.fail(f"the previous release is unavailable under CI: {exc}")
        pytest.skip(f"the previous release is unavailable: {exc}")
