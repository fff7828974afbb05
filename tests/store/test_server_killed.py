"""A server SIGKILLed while clients create events loses none that it acknowledged: every
create that got a 201 is there, as it was sent, once a server runs on the database again.

The kill lands at a moment chosen by the test (after a number of acknowledged creates, with
creates still in flight), not by a sleep. A create that was in flight when the process died
got no answer; it may or may not have been saved, and the test does not judge it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import EVENTS, event
from tests.support.server import kill, serve
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

CREATORS = 16
KILL_AFTER = 200  # acknowledged creates before the SIGKILL
MAX_CREATES = 5000  # bound of the loop if the kill never lands


async def test_every_acknowledged_create_survives_a_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    env = server_env(db, "none")
    created: dict[str, dict[str, Any]] = {}
    enough = asyncio.Event()
    sent = 0

    with serve(tmp_path, "A", env) as server:
        server.wait_ready()
        limits = httpx.Limits(max_connections=CREATORS)
        async with httpx.AsyncClient(
            base_url=server.url, timeout=5.0, limits=limits, trust_env=False
        ) as http:

            async def creator(n: int) -> None:
                nonlocal sent
                while not enough.is_set() and sent < MAX_CREATES:
                    sent += 1
                    body = event(f"creator {n} event {sent}", 1 + sent % 28)
                    try:
                        response = await http.post(EVENTS, json=body)
                    except httpx.TransportError:
                        return  # the server died under this request: no answer, no claim
                    assert response.status_code == 201, response.text
                    saved: dict[str, Any] = response.json()
                    created[saved["id"]] = saved
                    if len(created) >= KILL_AFTER:
                        enough.set()

            tasks = [asyncio.create_task(creator(n)) for n in range(CREATORS)]
            await asyncio.wait_for(enough.wait(), timeout=60)
            kill(server)  # creates are still in flight: the process dies under them
            await asyncio.gather(*tasks)
    assert len(created) >= KILL_AFTER

    with serve(tmp_path, "B", env) as again:
        again.wait_ready()
        async with httpx.AsyncClient(base_url=again.url, trust_env=False) as http:
            listed = await http.get(EVENTS, params={"limit": 1})
            total = int(listed.headers["x-total-count"])
            missing = []
            for event_id, saved in created.items():
                response = await http.get(f"{EVENTS}/{event_id}")
                if response.status_code != 200 or response.json() != saved:
                    missing.append((event_id, response.status_code))
    assert not missing, f"{len(missing)} acknowledged creates lost: {missing[:5]}"
    assert len(created) <= total <= sent
