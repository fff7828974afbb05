"""Access control in real `eventapi serve` processes: production refuses to start without
API keys (so does `uvicorn --factory`), bad access settings stop start-up in one line, the
open-API warning is logged once, keys never reach the output, and X-Forwarded-For is
honoured only from EVENTAPI_TRUSTED_PROXIES."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from eventapi.http.access import OPEN_WARNING
from tests.support.api import EVENTS, event
from tests.support.server import EVENTAPI, PYTHON, free_port, run, serve

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

KEY = "serve-key-0123456789abcdef"
OLD_KEY = "serve-old-key-0123456789ab"
WRONG = "serve-wrong-0123456789abcd"
SPOOFED = "203.0.113.7"  # TEST-NET-3: no real client has it


@pytest.fixture
def server_env(env: dict[str, str]) -> dict[str, str]:
    # Unbuffered, so the access log can be read while the server runs.
    return {**env, "EVENTAPI_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}


def refused_to_start(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a server command that must exit at once with an error; its output."""
    done = run(args, env, cwd)
    assert done.returncode != 0, done
    output = done.stdout + done.stderr
    assert "Application startup complete" not in output
    return output


def test_production_without_keys_refuses_to_start(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, "EVENTAPI_ENV": "production"}
    done = run([EVENTAPI, "serve", "--port", str(free_port())], env, tmp_path)

    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("eventapi: EVENTAPI_ENV=production needs EVENTAPI_API_KEYS")


def test_uvicorn_factory_in_production_without_keys_refuses_too(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, "EVENTAPI_ENV": "production"}
    args = [PYTHON, "-m", "uvicorn", "--factory", "eventapi.app:app_from_env"]
    output = refused_to_start([*args, "--port", str(free_port())], env, tmp_path)

    assert "EVENTAPI_API_KEYS" in output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EVENTAPI_API_KEYS", f"{KEY},,{OLD_KEY}"),
        ("EVENTAPI_API_KEYS", f"{KEY},short"),
        ("EVENTAPI_PUBLIC_READS", "maybe"),
        ("EVENTAPI_ENV", "staging"),
        ("EVENTAPI_CORS_ORIGINS", "https://app.example.com/"),
        ("EVENTAPI_TRUSTED_PROXIES", "proxy.internal"),
    ],
)
def test_a_bad_access_setting_stops_start_up_in_one_line(
    server_env: dict[str, str], tmp_path: Path, variable: str, value: str
) -> None:
    env = {**server_env, variable: value}
    done = run([EVENTAPI, "serve", "--port", str(free_port())], env, tmp_path)

    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert line.startswith(f"eventapi: invalid setting {variable}: ")
    for key in (KEY, OLD_KEY):
        assert key not in done.stdout + done.stderr


def test_production_with_keys_serves_and_never_logs_a_key(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **server_env,
        "EVENTAPI_ENV": "production",
        "EVENTAPI_API_KEYS": f"{KEY},{OLD_KEY}",
        "EVENTAPI_LOG_LEVEL": "debug",
    }
    with (
        serve(tmp_path, "production", env) as server,
        httpx.Client(base_url=server.url, trust_env=False) as http,
    ):
        server.wait_ready()
        refused = http.post(EVENTS, json=event())
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["content-type"] == "application/problem+json"
        wrong = http.post(EVENTS, json=event(), headers={"Authorization": f"Bearer {WRONG}"})
        assert wrong.status_code == 401
        created = http.post(EVENTS, json=event(), headers={"Authorization": f"Bearer {KEY}"})
        assert created.status_code == 201
        event_id = created.json()["id"]
        deleted = http.delete(
            f"{EVENTS}/{event_id}", headers={"X-API-Key": OLD_KEY, "X-Request-ID": "delete-1"}
        )
        assert deleted.status_code == 200
        server.wait_for_line("id=delete-1")
        output = server.output()

    assert "Application startup complete" in output
    assert OPEN_WARNING not in output
    for key in (KEY, OLD_KEY, WRONG):
        assert key not in output


def test_without_keys_start_up_warns_once(server_env: dict[str, str], tmp_path: Path) -> None:
    with (
        serve(tmp_path, "open", server_env) as server,
        httpx.Client(base_url=server.url, trust_env=False) as http,
    ):
        server.wait_ready()
        assert http.post(EVENTS, json=event()).status_code == 201
        server.wait_for_line(f"POST {EVENTS} 201")
        output = server.output()

    warnings = [line for line in output.splitlines() if OPEN_WARNING in line]
    assert len(warnings) == 1, output
    assert " WARNING eventapi " in warnings[0]


@pytest.mark.parametrize(
    ("trusted", "honoured"),
    [
        (None, False),  # the default: nobody may set X-Forwarded-*
        ("10.0.0.0/8", False),  # proxies configured, but this peer is not one of them
        ("127.0.0.1", True),
        ("10.0.0.0/8, 127.0.0.0/8", True),
    ],
)
def test_x_forwarded_for_only_from_trusted_proxies(
    server_env: dict[str, str], tmp_path: Path, trusted: str | None, honoured: bool
) -> None:
    env = dict(server_env)
    if trusted is not None:
        env["EVENTAPI_TRUSTED_PROXIES"] = trusted
    probe = uuid.uuid4().hex
    headers = {"X-Forwarded-For": SPOOFED, "X-Forwarded-Proto": "https", "X-Request-ID": probe}
    with (
        serve(tmp_path, "proxied", env) as server,
        httpx.Client(base_url=server.url, trust_env=False) as http,
    ):
        server.wait_ready()
        assert http.get("/health", headers=headers).status_code == 200
        # The request log names the client uvicorn settled on, after the timestamp.
        line = server.wait_for_line(f"id={probe}")

    client = line.split()[1]
    if honoured:
        assert client == SPOOFED, line
    else:
        assert client == "127.0.0.1", line
        assert SPOOFED not in line
