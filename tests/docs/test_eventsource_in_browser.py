"""A browser follows the events live: headless Chromium's own EventSource, on a page of the
server's origin, opens GET /api/changes/stream of a real `eventapi serve`, and receives a
change made meanwhile by another client, with its cursor as the event's lastEventId."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docs.availability import require_browser
from tests.docs.server import KEY
from tests.support.server import Server

require_browser()  # skips (or under CI fails) before Selenium is imported

from tests.docs.chrome import Chrome, started  # noqa: E402

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

FOLLOW = """
window.received = [];
window.opened = false;
const source = new EventSource("/api/changes/stream");
source.onopen = () => { window.opened = true; };
source.onmessage = (e) => window.received.push({ id: e.lastEventId, change: JSON.parse(e.data) });
window.source = source;
"""


@pytest.fixture(scope="module")
def browser(screenshots: list[Path]) -> Iterator[Chrome]:
    with started(screenshots) as browser:
        yield browser


def test_a_browsers_eventsource_receives_a_change_made_elsewhere(
    browser: Chrome, server: Server
) -> None:
    browser.open(f"{server.url}/docs")  # any page of the server's origin
    browser.driver.execute_script(FOLLOW)
    browser.wait(lambda d: d.execute_script("return window.opened") or None, "the stream open")

    with httpx.Client(base_url=server.url, trust_env=False, timeout=10.0) as http:
        auth = {"X-API-Key": KEY}
        body = {"title": "Live in the browser", "date": "2026-05-01T18:00:00"}
        made = http.post("/api/events", json=body, headers=auth).json()
        http.patch(f"/api/events/{made['id']}", json={"status": "cancelled"}, headers=auth)

    def two(driver: Any) -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = driver.execute_script("return window.received")
        return got if len(got) >= 2 else None

    received = browser.wait(two, "two changes in the browser")
    browser.driver.execute_script("window.source.close()")
    browser.screenshot("eventsource")

    assert [(r["change"]["id"], r["change"]["kind"]) for r in received] == [
        (made["id"], "created"),
        (made["id"], "updated"),
    ]
    assert received[1]["change"]["event"]["status"] == "cancelled"
    assert [r["id"] for r in received] == [r["change"]["cursor"] for r in received]
    assert browser.console_errors() == []
