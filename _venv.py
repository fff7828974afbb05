"""Lets `python main.py` / `python seed_db.py` work from a fresh clone after `make install`.

If the project's virtualenv exists and this is not it, re-run the script inside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def use_project_venv() -> None:
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        os.execv(str(venv_python), [str(venv_python), *sys.argv])
    sys.path.insert(0, str(ROOT / "src"))
