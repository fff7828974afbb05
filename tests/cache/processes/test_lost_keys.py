"""Issue 16: any key of the shared cache may vanish at any moment (eviction, DEL, FLUSHDB),
under two real server processes writing and reading: no read may then be older than a write
acknowledged before it (judged in commit order, commit_order.py).

The bookkeeping keys (cache/redis/cache.py, key layout) are lost again and again throughout the
load, one kind per test, and every few rounds the operator imports an event (`eventapi
import`, which retires the whole cache, and whose change no writer delivers: the writes
after it wait in the delivered set until a relay pass applies it). A lost epoch or
generation must never make a retired entry current again. (Counters read as 0 when
missing counted up again to the names of entries still alive: the epoch back to the one
the first entries were filled under, the generation back to the first list pages'.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from bench.writers import install
from tests.cache.processes.cache_faults import BOOKKEEPING, ask, bookkeeping_key, eventapi
from tests.cache.processes.hot_writes import (
    Hot,
    Recorder,
    assert_never_stale,
    cache_warnings,
    list_queries,
    run_rounds,
    seed,
)
from tests.cache.processes.recorder import warm
from tests.cache.processes.slow_link import slow_link
from tests.support.cluster import Api, clients
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

# A relay pass every two seconds: an imported change stays pending about a second, and the
# writes of the rounds meanwhile wait in the delivered set (something to lose). No write
# here fails to invalidate, and the import retires the cache itself, so the relay's pace
# bounds nothing this test judges.
RELAY = {"cache_relay_interval": 2.0}
HOT_EVENTS = 4
MIN_ROUNDS = 4
HOT = Hot(
    writers=2, rounds=100, seconds=5.0, readers=8, lists=list_queries(8), min_rounds=MIN_ROUNDS
)
# A key is lost every LOSE_EVERY seconds (pacing, not synchronisation) throughout the
# load: amid writes, reads, fills and relay passes alike. Quick enough to catch the
# delivered set, which exists only while invalidations arrive out of seq order.
FAR_AND_NEAR = (0.005, 0.0)  # seconds each way to Redis: the first process far, the next near
LOSE_EVERY = 0.01
FLUSH_EVERY = 0.1  # FLUSHDB empties the whole cache: less often, or nothing is cached
MAX_LOSSES = 2000
RETIRE_EVERY = 2  # rounds between two imports (each retires the whole cache)
DAY = "2025-07-01T12:00:00"  # of the imported events: on the list pages with the others


async def losing(
    tmp_path: Path,
    redis: RedisServer,
    lose: Callable[[], bool],
    every: float = LOSE_EVERY,
    link: Sequence[float] = (0.0,),
) -> str:
    """Hot rounds through two processes while ``lose()`` runs every ``every`` seconds (True:
    there was something to lose), and an event is imported every RETIRE_EVERY rounds. The
    processes reach Redis through a link that delays each one's commands by ``link[n]``
    seconds (slow_link.py). Asserts 0 stale reads; returns the summary."""
    db = tmp_path / "app.db"
    losses = retirements = 0
    with (
        slow_link(redis.port, link) as url,
        cluster(tmp_path, env := server_env(db, url, **RELAY)) as servers,
    ):
        install(db)
        async with clients(servers) as apis:
            recorder = Recorder()
            events = await seed(recorder, apis, HOT_EVENTS)
            await warm(recorder, apis, events)
            done = asyncio.Event()

            async def loser() -> None:
                nonlocal losses
                for _ in range(MAX_LOSSES):
                    if done.is_set():
                        return
                    losses += await asyncio.to_thread(lose)
                    await asyncio.sleep(every)

            async def import_one(n: int) -> None:
                nonlocal retirements
                rows = tmp_path / f"import-{n}.jsonl"
                rows.write_text(json.dumps({"title": f"imported {n}", "date": DAY}) + "\n")
                await asyncio.to_thread(eventapi, env, tmp_path, "import", rows)
                retirements += 1

            imports: list[asyncio.Task[None]] = []

            async def retire(n: int) -> None:
                # In the background: later rounds write while the import's change is
                # pending (and each round still ends with its quiescence check).
                if n % RETIRE_EVERY == 0:
                    imports.append(asyncio.create_task(import_one(n)))

            losses_made = asyncio.create_task(loser())
            try:
                # A key that exists only now and then (the delivered set) may not have been
                # caught yet when a busy machine has run few rounds: go on until it was.
                outcome = await run_rounds(
                    recorder,
                    apis,
                    events,
                    db,
                    HOT,
                    at_round=retire,
                    enough=lambda: losses >= 1 and retirements >= 1,
                )
            finally:
                done.set()
                await asyncio.gather(losses_made, *imports)
    judgement = recorder.judge(db)
    summary = (
        f"{recorder.summary(judgement)}\n{outcome.summary()}\n"
        f"keys lost: {losses}; whole cache retired: {retirements} times\n"
        f"{cache_warnings(servers)}"
    )
    print(summary)
    assert_never_stale(judgement, outcome, summary)
    assert outcome.rounds >= MIN_ROUNDS, summary
    assert retirements >= 1, summary
    assert losses >= 1, f"the key was never there to lose\n{summary}"
    return summary


@pytest.mark.parametrize("suffix", BOOKKEEPING)
async def test_a_bookkeeping_key_lost_again_and_again_under_load_brings_back_nothing_old(
    tmp_path: Path, redis_server: RedisServer, suffix: str
) -> None:
    names: list[str] = []

    def lose() -> bool:
        if not names:  # looked up once the first server has made the cache's keys
            names.append(bookkeeping_key(redis_server, suffix))
        return bool(ask(redis_server, "DEL", names[0]))

    # The delivered set holds the seqs delivered past a gap. With one process farther from
    # Redis than the other, the near one's later invalidation often arrives first, so the
    # set exists again and again for a few milliseconds: something to lose, whatever the
    # machine's load (with both near, a busy machine ran 20 s without one).
    link = FAR_AND_NEAR if suffix == "delivered" else (0.0,)
    await losing(tmp_path, redis_server, lose, link=link)


async def test_flushdb_again_and_again_under_load_brings_back_nothing_old(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    def flush() -> bool:
        return bool(ask(redis_server, "FLUSHDB") == b"OK")

    await losing(tmp_path, redis_server, flush, FLUSH_EVERY)


async def read_until_hit(recorder: Recorder, api: Api, event: str, listed: list[str]) -> None:
    """The event and the list page both cached in Redis through ``api`` (bounded)."""

    async def both_hit() -> bool:
        item = await recorder.read_item(api, event)
        page = await recorder.read_list(api, listed)
        return item.cache == page[0].cache == "HIT"

    await eventually(both_hit, f"{api.name} serving event {event} from the cache", step=0)


async def test_an_item_and_a_page_cached_before_a_retirement_stay_retired_when_the_epoch_is_lost(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The issue's scenario, step by step: an item and a list page cached; the whole cache
    retired; a newer write acknowledged; the epoch and the generation lost; the cache
    retired again, and more writes. With counters, the second retirement counted the epoch
    back to the one the item was cached under, and the writes the generation back to the
    page's: both served again, HITs of the old title, through both processes."""
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url, cache_relay_interval=0.25)
    # The samples first, without the cache: every later run inserts nothing, and so only
    # retires the cache, with no change of its own for the relays to apply at their pace.
    eventapi({**env, "EVENTAPI_CACHE_URL": "none"}, tmp_path, "seed", "--insert-samples")
    with cluster(tmp_path, env) as servers:
        install(db)
        async with clients(servers) as apis:
            recorder = Recorder()
            event, other = await seed(recorder, apis, 2)
            for api in apis:
                await read_until_hit(recorder, api, event, [event, other])

            eventapi(env, tmp_path, "seed", "--insert-samples")  # retires every entry
            newer = await recorder.write(apis[0], event, "newer")
            assert newer.status == 200, newer
            lost = [bookkeeping_key(redis_server, s) for s in ("epoch", "generation")]
            assert ask(redis_server, "DEL", *lost) == 2, lost  # both were there
            eventapi(env, tmp_path, "seed", "--insert-samples")

            for n in range(6):  # each write of the other event moves the generation on
                assert (await recorder.write(apis[n % 2], other, f"other{n}")).status == 200
                for api in apis:
                    await recorder.read_item(api, event)
                    await recorder.read_list(api, [event, other])
    judgement = recorder.judge(db)
    summary = f"{recorder.summary(judgement)}\n{cache_warnings(servers)}"
    print(summary)
    report = judgement.report
    assert not report.stale, summary
    assert not report.read_errors, summary
    assert not report.phantoms, summary
