"""The one history recorder of the multi-process tests: every write and read sent to real
server processes, timed with one clock in this process, for a checker to judge.

Generic over what a "version" is: a number (history.py, which checks that reads never go
back behind an acknowledged write: titles ``v<N>``) or a title unique to each write
(commit_order.py, which compares with the order of the database's commits). A subclass
names how a version is written as a title, read back from one, and recorded.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import httpx

from tests.cache.processes.history import TRANSPORT_ERROR, ReadKind
from tests.support.cluster import Api
from tests.support.poll import eventually

EVENTS = "/api/events"
LIST_PAGE: Mapping[str, Any] = {"limit": 100}

# How long each process may take to serve its first read from the cache: on a busy
# machine a start-up ping or lease past its budget opens the breaker, which lets a probe
# through once per reset period.
WARM_WITHIN = 30.0

V = TypeVar("V")  # a version as the checker sees it
W = TypeVar("W")  # the checker's record of a write
R = TypeVar("R")  # the checker's record of a read


class Recorder(Generic[V, W, R]):
    """Every write and read, in the order sent, timed with one clock in this process."""

    absent: V  # what a list read records for an event missing from the page
    # More fields of every event created (a recurrence, for runs that read expanded pages).
    created_with: Mapping[str, Any] = MappingProxyType({})

    def __init__(self) -> None:
        self.writes: list[W] = []
        self.reads: list[R] = []
        self.origin = time.monotonic()

    # What a subclass names.

    def title_of(self, version: V) -> str:
        raise NotImplementedError

    def version_of(self, title: object) -> V | None:
        """The version a title shows; None if it shows none."""
        raise NotImplementedError

    def new_write(
        self, event: str, version: V, via: str, sent: float, received: float, status: int
    ) -> W:
        raise NotImplementedError

    def new_read(
        self,
        event: str,
        version: V | None,
        via: str,
        kind: ReadKind,
        sent: float,
        received: float,
        status: int,
        cache: str,
    ) -> R:
        raise NotImplementedError

    # Recording.

    async def create_version(self, api: Api, version: V, day: int = 1) -> str:
        """POST an event showing ``version``; its id."""
        body = {
            "title": self.title_of(version),
            "date": f"2025-06-{day:02d}T12:00:00",
            **self.created_with,
        }
        sent = time.monotonic()
        response = await api.http.post(EVENTS, json=body)
        received = time.monotonic()
        assert response.status_code == 201, response.text
        event: str = response.json()["id"]
        self.writes.append(
            self.new_write(event, version, api.name, sent, received, response.status_code)
        )
        return event

    async def write_version(self, api: Api, event: str, version: V) -> W:
        """PATCH ``event`` to show ``version`` (a transport error is recorded, not raised)."""
        sent = time.monotonic()
        try:
            response = await api.http.patch(
                f"{EVENTS}/{event}", json={"title": self.title_of(version)}
            )
            status = response.status_code
        except httpx.TransportError:
            status = TRANSPORT_ERROR
        done = self.new_write(event, version, api.name, sent, time.monotonic(), status)
        self.writes.append(done)
        return done

    async def read_item(self, api: Api, event: str) -> R:
        sent = time.monotonic()
        try:
            response = await api.http.get(f"{EVENTS}/{event}")
        except httpx.TransportError:
            done = self.new_read(
                event, None, api.name, "item", sent, time.monotonic(), TRANSPORT_ERROR, ""
            )
        else:
            received = time.monotonic()
            ok = response.status_code == 200
            version = self.version_of(response.json().get("title")) if ok else None
            cache = response.headers.get("x-cache", "")
            done = self.new_read(
                event, version, api.name, "item", sent, received, response.status_code, cache
            )
        self.reads.append(done)
        return done

    async def read_list(
        self, api: Api, events: Sequence[str], params: Mapping[str, Any] = LIST_PAGE
    ) -> list[R]:
        """One list page; one read per tracked event (``absent`` if the page lacks it)."""
        sent = time.monotonic()
        seen: dict[str, V | None] | None = None
        cache = ""
        try:
            response = await api.http.get(EVENTS, params=dict(params))
        except httpx.TransportError:
            status = TRANSPORT_ERROR
        else:
            status = response.status_code
            cache = response.headers.get("x-cache", "")
            if status == 200:
                # An expanded page's occurrence shows its series' version.
                seen = {
                    e.get("series_id", e["id"]): self.version_of(e["title"])
                    for e in response.json()
                }
        received = time.monotonic()
        done = [
            self.new_read(
                e,
                None if seen is None else seen.get(e, self.absent),
                api.name,
                "list",
                sent,
                received,
                status,
                cache,
            )
            for e in events
        ]
        self.reads.extend(done)
        return done


async def warm(
    recorder: Recorder[Any, Any, Any], apis: Sequence[Api], events: Sequence[str]
) -> None:
    """Every event and the list page read through every process (twice: fill, then hit),
    then on until every process has answered a read from the cache: a run that never used
    the cache would judge nothing of it."""
    for _ in range(2):
        for api in apis:
            await asyncio.gather(*(recorder.read_item(api, e) for e in events))
            await recorder.read_list(api, events)
    for api in apis:
        await eventually(
            functools.partial(_cache_of_a_read, api, events[0]),
            f"a cache HIT through {api.name}",
            within=WARM_WITHIN,
            step=0.1,
            until=lambda cache: cache == "HIT",
        )


async def _cache_of_a_read(api: Api, event: str) -> str:
    """X-Cache of one read (not recorded: warming up is not part of the history)."""
    response = await api.http.get(f"{EVENTS}/{event}")
    cache: str = response.headers.get("x-cache", "")
    return cache
