"""`eventapi seed`: insert the sample events, clear the store, or show the count.

Talks to the store directly (the server need not run).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from eventapi.cache.factory import open_cache
from eventapi.cache.guard import GuardedCache
from eventapi.events import dates
from eventapi.events.samples import SAMPLE_EVENTS
from eventapi.events.store import EventStore
from eventapi.metrics import Metrics
from eventapi.settings import Settings
from eventapi.storage.factory import open_store

MENU = """
Event database seeder ({where})
  1. Insert the sample events
  2. Delete all events
  3. Show the number of events
  4. Quit
"""


async def insert_samples(store: EventStore) -> str:
    # Made now: that is when they were created (an event already there keeps its own).
    now = dates.now()
    stamped = [e.model_copy(update={"created_at": now, "updated_at": now}) for e in SAMPLE_EVENTS]
    added = await store.insert_missing(stamped)
    skipped = len(SAMPLE_EVENTS) - added
    return f"Inserted {added} sample events ({skipped} already present)."


async def clear(store: EventStore) -> str:
    return f"Deleted {await store.delete_all()} events."


async def show_count(store: EventStore) -> str:
    return f"The database holds {await store.count()} events."


Action = Callable[[EventStore], Coroutine[Any, Any, str]]
ACTIONS: dict[str, Action] = {"1": insert_samples, "2": clear, "3": show_count}
WRITES = {"1", "2"}


MEMORY_CACHE_NOTE = (
    "Note: no shared cache to clear here (memory://); running servers drop what they have "
    "cached through the change log, within EVENTAPI_CACHE_RELAY_INTERVAL (0.25 s)."
)


async def retire_shared_cache(cache: GuardedCache[Any] | None) -> str | None:
    """After writing behind the API's back: retire every entry of the shared cache at once,
    so no server serves one after this returns. (The writes are in the change log too, which
    every server applies to its own cache within a relay interval.) Returns a note to print
    when this process has no shared cache to retire."""
    if cache is None:
        return None
    await cache.retire_all()
    return MEMORY_CACHE_NOTE if cache.backend == "memory" else None


async def _read_line(prompt: str) -> str:
    """input() in a daemon thread: Ctrl-C must not wait for a thread blocked on stdin."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            line = input(prompt)
        except BaseException as exc:  # EOFError and friends go back to the awaiting task
            loop.call_soon_threadsafe(_settle, answer, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, answer, line, None)

    threading.Thread(target=read, daemon=True, name="seed-input").start()
    return await answer


def _settle(future: asyncio.Future[str], line: str | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(line or "")


async def _confirm_delete_all(store: EventStore) -> bool:
    """The menu asks before deleting everything (--clear does not: it was asked for)."""
    prompt = f"Delete all {await store.count()} events? This cannot be undone. [y/N]: "
    try:
        answer = await _read_line(prompt)
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


async def run(settings: Settings, choices: list[str] | None, out: TextIO = sys.stdout) -> int:
    """Run the given actions in order, or the interactive menu when there are none."""
    async with open_store(settings) as store, open_cache(settings, Metrics()) as cache:

        async def act(choice: str) -> str:
            message = await ACTIONS[choice](store)
            if choice in WRITES:
                note = await retire_shared_cache(cache)
                if note:
                    message += "\n" + note
            return message

        if choices:
            for choice in choices:
                print(await act(choice), file=out)
            return 0
        where = settings.safe_database_url
        while True:
            print(MENU.format(where=where), file=out)
            try:
                choice = (await _read_line("Choose an option [1-4]: ")).strip()
            except EOFError:
                print(file=out)
                return 0
            if choice == "4":
                return 0
            if choice == "2" and not await _confirm_delete_all(store):
                print("Nothing deleted.", file=out)
                continue
            known = choice in ACTIONS
            print(await act(choice) if known else f"Unknown option {choice!r}.", file=out)
