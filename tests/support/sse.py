"""A Server-Sent Events client for the tests, over httpx: the event stream format as the
WHATWG HTML standard parses it (fields ``id``, ``event``, ``data``, ``retry``; comment
lines; an event dispatched at a blank line)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Stream:
    """An open stream, read in the background (so waiting for an event with a time-out
    never interrupts the reading)."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    retries: list[int] = field(default_factory=list)
    ended: bool = False
    _queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._reader

    async def next(self, within: float = 10.0) -> Event | None:
        """The next event (comments and retry fields are recorded on the way), or None
        once the stream has ended. Raises TimeoutError after ``within`` seconds."""
        return await asyncio.wait_for(self._queue.get(), within)

    async def _read(self) -> None:
        event_id: str | None = None
        kind, data = "message", list[str]()
        try:
            async for line in self.response.aiter_lines():
                if not line:
                    if data:
                        await self._queue.put(Event(event_id, kind, "\n".join(data)))
                    kind, data = "message", list[str]()
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if not name:
                    self.comments.append(value)
                elif name == "id":
                    event_id = value
                elif name == "event":
                    kind = value
                elif name == "data":
                    data.append(value)
                elif name == "retry" and value.isdigit():
                    self.retries.append(int(value))
        except httpx.HTTPError:
            pass  # the connection was dropped: the stream ended
        finally:
            self.ended = True
            await self._queue.put(None)

    async def events(self, count: int, within: float = 10.0) -> list[Event]:
        found: list[Event] = []
        for _ in range(count):
            event = await self.next(within)
            assert event is not None, f"the stream ended after {found}"
            found.append(event)
        return found


@asynccontextmanager
async def stream(
    http: httpx.AsyncClient, path: str = "/api/changes/stream", **kwargs: Any
) -> AsyncIterator[Stream]:
    """A stream opened with GET ``path`` (must answer 200), closed at the end."""
    async with http.stream("GET", path, timeout=httpx.Timeout(30.0), **kwargs) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        opened = Stream(response)
        opened.start()
        try:
            yield opened
        finally:
            await opened.stop()
            with contextlib.suppress(httpx.HTTPError):
                await response.aclose()
