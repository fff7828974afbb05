"""Make the upgrade fixtures with the previous release's own code, from git history.

    .venv/bin/python -m tests.store.upgrade.make_fixtures     (from the repository root)

1. ``git archive PREVIOUS_RELEASE src | tar -x`` into a temporary folder: that release's
   code, whatever the work tree holds now.
2. _previous_writer.py, in a subprocess with PYTHONPATH=<that src> (it checks that
   ``eventapi`` is imported from there), writes one deterministic history with that
   release's SqliteEventStore and MongoEventStore (on mongomock-motor).
3. That release's own ``eventapi export`` CLI, run the same way on a copy of the SQLite
   database, writes the export file (its default format: JSON Lines).
4. The manifest: what the tests must find after an upgrade.

The files replace tests/store/upgrade/fixtures/previous.* only once all of them are made.
Only ObjectIds and times (when records were written) differ from one run to the next.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.store.upgrade.fixtures import (
    EXPORT,
    FIXTURES,
    MANIFEST,
    MONGO,
    PREVIOUS_RELEASE,
    REPO_ROOT,
    SQLITE,
    ReleaseUnavailable,
    extract_previous_release,
)

WRITER = Path(__file__).resolve().parent / "_previous_writer.py"
STATE = "state.json"

# Run the previous release's CLI (its cli.main, as the `eventapi` script does), once sure
# that `eventapi` is that release's.
_RUN_CLI = """\
import pathlib, sys
import eventapi
src = pathlib.Path(sys.argv.pop(1)).resolve()
if not pathlib.Path(eventapi.__file__).resolve().is_relative_to(src):
    sys.exit(f"eventapi comes from {eventapi.__file__}, not from {src}: refusing")
from eventapi.cli import main
main()
"""


def release_env(src: Path, **settings: str) -> dict[str, str]:
    """This environment, with PYTHONPATH the release's src/ alone and no EVENTAPI_* setting
    but ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("EVENTAPI_") and name != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(src)
    env.update({f"EVENTAPI_{name.upper()}": value for name, value in settings.items()})
    return env


def write_stores(src: Path, out: Path) -> dict[str, Any]:
    """Run the writer under the release's code; its state.json."""
    # -P: nothing (the script's folder, the current one) goes before PYTHONPATH.
    command = [sys.executable, "-P", str(WRITER), "--src", str(src), "--out", str(out)]
    subprocess.run(command, env=release_env(src), cwd=out, check=True)
    state: dict[str, Any] = json.loads((out / STATE).read_text(encoding="utf-8"))
    return state


def export(src: Path, database: Path, work: Path) -> tuple[bytes, str]:
    """The release's `eventapi export`, with its defaults (standard output, JSON Lines), of
    a copy of ``database``: the file's bytes and what it said on stderr."""
    work.mkdir()
    copy = work / database.name
    shutil.copyfile(database, copy)
    env = release_env(src, database_url=f"sqlite:///{copy}")  # an absolute path: 4 slashes
    done = subprocess.run(
        [sys.executable, "-P", "-c", _RUN_CLI, str(src), "export"],
        env=env,
        cwd=work,
        capture_output=True,
        check=False,
    )
    said = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        sys.exit(f"make_fixtures: the previous release's export failed:\n{said}")
    return done.stdout, said


def check_export(lines: bytes, events: dict[str, Any]) -> int:
    """The export holds every event of the SQLite store, as the release renders it."""
    # One event a line, lines ending at b"\n" alone (a value may hold U+2028 or \r).
    rows = [json.loads(line) for line in lines.split(b"\n") if line]
    assert [row["id"] for row in rows] == sorted(events), "export ids differ from the store's"
    for row in rows:
        assert row == events[row["id"]], row
    return len(rows)


def make_manifest(state: dict[str, Any], exported: int, made_at: str) -> dict[str, Any]:
    return {
        "previous_release": PREVIOUS_RELEASE,
        "made_at": made_at,
        "made_by": "tests/store/upgrade/make_fixtures.py",
        "made_with": state["made_with"],
        "files": {
            "sqlite": SQLITE.name,
            "mongodb": MONGO.name,
            "export": EXPORT.name,
        },
        "export": {"format": "jsonl", "of": "sqlite", "events": exported},
        "history": state["history"],
        "scopes": state["scopes"],
        "stores": state["stores"],
    }


def install(made: dict[Path, Path]) -> None:
    """Move the made files into FIXTURES, replacing the old ones (and any stray -wal/-shm
    beside the database, which would otherwise be read as part of it)."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        SQLITE.with_name(SQLITE.name + suffix).unlink(missing_ok=True)
    for source, target in made.items():
        shutil.copyfile(source, target)


def main() -> None:
    made_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="eventapi-previous-release-") as folder:
        tmp = Path(folder)
        try:
            src = extract_previous_release(tmp)  # tmp/src
        except ReleaseUnavailable as exc:
            sys.exit(f"make_fixtures: {exc}")
        out = tmp / "out"
        out.mkdir()
        state = write_stores(src, out)
        lines, said = export(src, out / SQLITE.name, tmp / "export")
        exported = check_export(lines, state["stores"]["sqlite"]["events"])
        (out / EXPORT.name).write_bytes(lines)
        text = json.dumps(make_manifest(state, exported, made_at), indent=1, ensure_ascii=False)
        (out / MANIFEST.name).write_text(text + "\n", encoding="utf-8")
        install({out / target.name: target for target in (SQLITE, MONGO, EXPORT, MANIFEST)})
    sizes = ", ".join(
        f"{path.name} {path.stat().st_size:,} B" for path in (SQLITE, MONGO, EXPORT, MANIFEST)
    )
    print(f"previous release {PREVIOUS_RELEASE[:12]}: {said.strip()}")
    print(f"wrote {FIXTURES.relative_to(REPO_ROOT)}: {sizes}")


if __name__ == "__main__":
    main()
