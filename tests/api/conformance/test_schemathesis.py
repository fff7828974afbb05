"""The API against its own OpenAPI document: Schemathesis, every check and every phase
(examples, coverage, fuzzing, stateful through the document's links), run as its command
line runs, against a real `eventapi serve` with API keys on SQLite and a throwaway Redis.

Zero failures means: no 5xx; every status, header and body is one the document lists for
that operation; schema-valid requests are accepted and schema-invalid ones refused; writes
without a key get 401. Configuration and the written reason for each relaxed check:
schemathesis.toml; generation steered away from cross-field rules: hooks.py. The seed is
fixed so CI is repeatable; EVENTAPI_SCHEMATHESIS_SEED explores another part of the space.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

HERE = Path(__file__).parent
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
KEY = "conformance-key-0123456789abcdef"
SEED = os.environ.get("EVENTAPI_SCHEMATHESIS_SEED", "20261125")
WITHIN = 300  # seconds: a bounded run takes well under a minute


def test_the_api_conforms_to_its_openapi_document(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = server_env(tmp_path / "app.db", redis_server.url, api_keys=KEY)
    with cluster(tmp_path, env, names=["A"]) as [server]:
        done = subprocess.run(
            [
                SCHEMATHESIS,
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "--no-color",
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {KEY}",
                "--seed",
                SEED,
            ],
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py")},
            cwd=tmp_path,  # its caches and reports stay out of the checkout
            capture_output=True,
            text=True,
            timeout=WITHIN,
            check=False,
        )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in report, report  # ran, and passed
    assert " 0 passed" not in report, report
