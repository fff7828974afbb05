"""The original install path: `pip install -r requirements.txt` in a fresh virtualenv, then
`python main.py` serves. requirements.txt is generated from the pins (scripts/
requirements.py, `make requirements`) and must be up to date."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.requirements import render
from tests.deploy.files import ROOT
from tests.support.server import free_port, main_py
from tests.support.settings import clean_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

INSTALL_WITHIN = 240  # seconds for pip: a hung index fails, it does not hang CI


def test_requirements_txt_is_generated_from_the_pins() -> None:
    assert (ROOT / "requirements.txt").read_text() == render(), "run: make requirements"


@pytest.mark.network
def test_pip_install_requirements_then_python_main_py_serves(tmp_path: Path) -> None:
    # A checkout without the project's .venv (main.py would switch to it), as a new user has.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("main.py", "_venv.py", "requirements.txt"):
        shutil.copy(ROOT / name, checkout / name)
    shutil.copytree(ROOT / "src", checkout / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", "requirements.txt"],
        cwd=checkout,
        check=True,
        timeout=INSTALL_WITHIN,
    )

    port = free_port()
    env = clean_env(
        EVENTAPI_DATABASE_URL=f"sqlite:///{tmp_path / 'events.db'}",
        EVENTAPI_CACHE_URL="none",
        EVENTAPI_PORT=str(port),
    )
    url = f"http://127.0.0.1:{port}"
    with main_py(env, checkout, url, str(python), str(checkout / "main.py")) as server:
        server.wait_ready()  # GET /health answered 200
        assert "Application startup complete" in server.output()
