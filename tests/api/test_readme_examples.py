"""The README's paging example is what the sample data really returns (issue 18)."""

from __future__ import annotations

import re
from pathlib import Path

from eventapi.events.store import EventStore
from eventapi.seeding import insert_samples
from eventapi.settings import Settings
from tests.support.app import run_app

README = Path(__file__).resolve().parents[2] / "README.md"


def paging_example() -> tuple[str, dict[str, str]]:
    """The request the README's paging example names, and the headers it shows."""
    text = README.read_text()
    found = re.search(
        r"`GET (/api/events\?[^`]+)` answers with .*?\n```\n(.*?)```", text, re.DOTALL
    )
    assert found, "the paging example is gone from the README"
    lines = found.group(2).strip().splitlines()
    return found.group(1), dict(line.split(": ", 1) for line in lines)


async def test_the_paging_example_shows_what_the_samples_give(
    store: EventStore, settings: Settings
) -> None:
    await insert_samples(store)
    path, shown = paging_example()
    async with run_app(settings, store) as app:
        response = await app.http.get(path)
    assert response.status_code == 200
    assert {name: response.headers[name] for name in shown} == shown
