"""The app's one typed state: what its lifespan opened (app.py), yielded as Starlette's
lifespan state, which the server copies into every request's scope (``scope["state"]``).
The routes reach it through deps.py; the layers in front of them through ``runtime_of``.
Nothing else is kept on the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from starlette.types import Scope

from eventapi.cache.entry import Entry
from eventapi.cache.guard import GuardedCache
from eventapi.events.admission import ListAdmission
from eventapi.events.known_queries import KnownQueries
from eventapi.events.service import EventService
from eventapi.events.store import EventStore
from eventapi.follow.stream import StreamSlots
from eventapi.follow.watch import ChangeWatch
from eventapi.http.caller import Callers
from eventapi.logs import RequestLog
from eventapi.metrics import Metrics
from eventapi.settings import Settings


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    metrics: Metrics
    store: EventStore
    cache: GuardedCache[Entry] | None  # None: EVENTAPI_CACHE_URL=none
    service: EventService
    admission: ListAdmission  # uncached list queries and change-feed pages at once
    callers: Callers  # who sent a request, against the configured keys (http/caller.py)
    known_queries: KnownQueries  # learned by the list route, read by the fast path
    request_log: RequestLog | None  # None: EVENTAPI_LOG_LEVEL above info
    watch: ChangeWatch  # the change log's head, and its recent changes for the streams
    streams: StreamSlots  # the change streams open in this process


class State(TypedDict):
    runtime: Runtime


def runtime_of(scope: Scope) -> Runtime:
    runtime: Runtime = scope["state"]["runtime"]
    return runtime
