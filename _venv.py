"""Lets `python main.py` / `python seed_db.py` work from a fresh clone after `make install`.

If the project's virtualenv exists and this is not it, re-run the script inside it; if the
dependencies are nowhere to be found, say in one line what to run instead of a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def use_project_venv() -> None:
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        os.execv(str(venv_python), [str(venv_python), *sys.argv])
    sys.path.insert(0, str(ROOT / "src"))


def entry_point(name: str) -> Callable[[], None]:
    """``eventapi.cli.<name>``, or exit with one line if the dependencies are missing."""
    use_project_venv()
    try:
        # What every command needs (the CLI imports the rest as it goes).
        from eventapi import app, cli
        from eventapi.storage import sqlite
    except ModuleNotFoundError as missing:
        sys.exit(
            f"{Path(sys.argv[0]).name}: the dependencies are not installed ({missing}). "
            "Run `make install` first (or `pip install -r requirements.txt` in a virtualenv), "
            "then run this again."
        )
    del app, sqlite
    command: Callable[[], None] = getattr(cli, name)
    return command
