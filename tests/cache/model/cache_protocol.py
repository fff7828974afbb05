"""A model of the cache protocol, version 2, checked over every interleaving (explore.py).

What it stands for: cache/redis/scripts.py (its Lua scripts as version 2 of the protocol defines
them: epoch and generation are tokens, a missing one is replaced by a fresh one),
cache/readthrough.py (a read: LEASE, store read, FILL), events/service.py (an update:
WRITE_LEASE, store commit, INVALIDATE, acknowledgement), cache/relay.py and cache/guard.py
(relay passes, the breaker and its probe, the gate and the fence). Every step's label names
what it stands for.

The world, bounded by Config: two processes, two concurrent updates of one event, one read
(of the event or of a list page, in either process), each process's relay, and faults:
any key evicted (or deleted, or expired), FLUSHDB, a process crash, Redis refusing writes
(OOM, READONLY), and calls timing out (Redis ran them, or not, or runs them later).

The promise, checked in every state (CacheProtocol.check): a read returns a version at
least as new as every update acknowledged before it was sent. It has no excuse (there was
one, a window, before the fence). Besides the one read, the check reads the cache as a
read sent to each process at that instant would (a LEASE that HITs writes nothing), unless
that read would not use the cache (the process's breaker open, or its gate shut), so
whatever a read, an update or a relay leaves in the cache is checked wherever and whenever
it could be served. Once every update is acknowledged, that is the promise's last clause:
every process serves what the store holds.

The fence (cache/guard.py; Config.fenced). An update whose invalidation failed (refused,
timed out, skipped: its breaker open) leaves what it replaced in the cache, where another
process finds it until its relay applies the change (the window). Two rules with one
length of time, FENCE, close the window:
- the gate: a process's read uses the cache only while its last *completed* relay pass
  (or probe's catch-up) *started* less than FENCE ago; otherwise it reads the store and
  fills nothing (GuardedCache.lease checks it before the LEASE is sent, at each look;
  label REF_GATE). A FILL is not gated: a read that took its lease before the gate shut
  has no update acknowledged since in what it must return.
- the fence: such an update is acknowledged only FENCE after its commit
  (GuardedCache.invalidate; the label of the step that acknowledges it names REF_FENCE).
The model has no clock: it stands for the two by what they imply together. When the
update is acknowledged, FENCE after its commit, every other process has either completed
a pass that started after the commit (it read the update from the log and applied it), or
its last completed pass started before the commit, more than FENCE ago: it is gated until
it completes a pass that started after the commit (one that started before and completes
later does not count: the gate is by start time; a failed pass completes nothing). So, in
the model, a process is gated (``gated``) from the acknowledgement of an update whose
invalidation failed, in another process (``in_window``), until it completes a relay pass,
or a probe that closes its breaker, whose snapshot holds the update: the updates committed
when the pass read the log (``Relay.snapshot``, ``State.caught``, ``_finish``; not
``_failed_pass``, ``_abandon``). Committed, not acknowledged: the updates acknowledged
when the pass started would gate longer than the real gate does, and check less. The real
gate shuts more often besides (a relay merely slow): that only sends more reads to the
store, and a read that does ends like the steps left out below; so the model's gate is
the least the real one does, and what the model checks covers the real code. Without the
fence (``fenced=False``: no gate, an update acknowledged at once) the promise breaks: see
the tests.

Reductions. Each keeps every violation reachable, so that a pass means what it says;
``reduce=False`` turns off those that are not exact, to check that on small worlds.
- One step for a read's start, its LEASE and (unless it HITs) its store read: sent later,
  a read must return more; loaded later, it fills a newer value. One step for a relay
  pass's start, its GET of the watermark and its store read: Redis-only steps commute
  with a store read, store-only steps with a GET; and the gate trusts the pass with what
  committed before that step, which is all that committed before the real pass started
  (what the real gate trusts it with), and more. An update is acknowledged in the step
  that ends its INVALIDATE, the earliest (strictest) moment.
- An eviction or FLUSHDB is taken just before the next step that reads the key: the steps
  in between do not see it, and a missing key never makes a read staler (a missing value,
  epoch or generation is a miss). Not so with the old integer counters, whose missing
  epoch names old entries again: there faults strike at any step.
- Left out: steps that only end the read (a HIT, BUSY, a bypass, the gate's too: the read
  not taking them reaches the same states, and the check reads as it would), a FILL whose
  lease is gone, a relay pass that would change nothing, leases no caller holds a token
  of (a FILL or a warm write can never match them; a write lease replaces them; all they
  could still do is make a read find BUSY, as it may once they expire).
- Exact: a refusal is an outcome of a call (the first one picks OOM or READONLY); entries
  nothing can name again are dropped and fresh tokens renumbered (they are only compared
  for equality); forgotten are what a crashed process can no longer use, a breaker's one
  counted failure once no time-out is left, the refusal mode once no refusal is left, and
  which windows a process is past where that cannot matter (its breaker open: the probe
  that closes it sets them anew; an update whose invalidation was done); and the two
  updates, with their processes, are swapped when that gives a state explored already.
A crash shows the check nothing that a process stalling does not; it is modelled all the
same, as the protocol names it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple, TypeVar

from tests.cache.model.explore import Outcome, explore

# What each step stands for, in its label.
REF_WRITE_LEASE = (
    "WRITE_LEASE, cache/redis/scripts.py; ReadThrough.lease_for_write; EventCache.write"
)
REF_COMMIT = "EventStore.update: the event and its change-log record, one transaction"
REF_INVALIDATE = "INVALIDATE, cache/redis/scripts.py; GuardedCache.invalidate; EventCache.write"
REF_FENCE = "GuardedCache.invalidate (the fence), cache/guard.py"
REF_LEASE = "LEASE, cache/redis/scripts.py; ReadThrough._lookup, then load() on a miss"
REF_BYPASS = "ReadThrough._attempt: CacheUnavailable, so load() (X-Cache: BYPASS)"
REF_GATE = "GuardedCache.lease (the gate), cache/guard.py: CacheUnavailable, so load() (BYPASS)"
REF_FILL = "FILL, cache/redis/scripts.py; ReadThrough._attempt"
REF_RELAY = "relay.catch_up: GET watermark, feed.changes_since; GuardedCache.relay"
REF_PROBE = "GuardedCache.probe: reconnect, PING, relay.catch_up: GET watermark, changes_since"
REF_CATCH_UP = "CATCH_UP, cache/redis/scripts.py; relay.catch_up"
REF_RESET = "RESET, cache/redis/scripts.py; relay.catch_up"
REF_PROBE_SET = "GuardedCache.probe: SET of the probe key, then CircuitBreaker.close"
REF_PENDING = "an older EventCache.write: lease_for_write run beside the store write"

# An entry's name: (epoch, generation); an item's has no generation.
ITEM = -1
Name = tuple[int, int]
# A Redis key: ("epoch" | "generation" | "watermark" | "delivered", None), or
# ("value" | "lease", the entry's name).
Key = tuple[str, Name | None]
EPOCH: Key = ("epoch", None)
GENERATION: Key = ("generation", None)
WATERMARK: Key = ("watermark", None)
DELIVERED: Key = ("delivered", None)

# Relay passes failed in a row that open the breaker (guard.py RELAY_FAILURES).
RELAY_FAILURES = 2
# Breaker states (cache/breaker.py); COUNTED: closed, one failure counted (of 2).
CLOSED, COUNTED, OPEN, HALF_OPEN = "closed", "closed (1 failure)", "open", "half-open"
READS_CACHE = (CLOSED, COUNTED)

# Program counters.
LEASE, COMMIT, INVALIDATE, DONE = "lease", "commit", "invalidate", "done"
START, POLL, FILL = "start", "poll", "fill"
IDLE, CATCH_UP, RESET, PROBE_SET = "idle", "catch_up", "reset", "probe_set"
ITEM_READ, LIST_READ = "item", "list"

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    processes: int = 2
    writer_procs: tuple[int, ...] = (0, 1)  # the process of each update of the one event
    reader: bool = True  # the one read (False: only the check's reads at each instant)
    reads: tuple[str, ...] = (ITEM_READ, LIST_READ)  # what it may read
    polls: int = 2  # LEASE calls it may make: it looks again after BUSY
    relay_passes: int = 2  # per process, probes included
    evictions: int = 2  # of any key: eviction, DEL, a lease's expiry
    flushes: int = 1  # FLUSHDB, or Redis restarted empty
    crashes: int = 1  # SIGKILL: the process's actors stop, its leases stay
    refusals: int = 1  # write calls refused, for OOM or READONLY (one of them per run)
    timeouts: int = 1  # calls that time out: Redis ran them, or did not
    late_timeouts: bool = False  # ... or runs them later, at any step
    warm: bool = True  # the cache starts holding v0: the item and a list page
    reduce: bool = True  # the reductions of the module docstring that are not exact
    # Amendments to protocol.md's version 2 that this model found necessary; False: as
    # written (the promise breaks: see the tests).
    # CATCH_UP finding no watermark retires everything and sets the watermark to
    # ``through``, as RESET does; as written it does nothing, and its relay pass ends as
    # if it had applied the changes.
    catch_up_resets: bool = True
    # An invalidation while the probe is under way (half-open) is sent, not skipped, and
    # one that fails trips the breaker: the probe closes it only if it is still half-open
    # (GuardedCache.probe). As written it was skipped and the probe closed the breaker,
    # although its relay pass may have read the log before that update committed.
    invalidate_during_probe: bool = True
    # The fence (cache/guard.py; the module docstring): an update whose invalidation
    # failed is acknowledged FENCE after its commit, and a process still in its window
    # then is gated (reads the store) until its relay has applied it. False: neither, the
    # update is acknowledged at once (the promise breaks: see the tests).
    fenced: bool = True
    # Variants: the old code (the tests show which break the promise).
    lease_before_commit: bool = True  # False: WRITE_LEASE may run after the commit
    missing_counter_is_zero: bool = False  # True: integer epoch/generation, missing = 0
    oom_safe_scripts: bool = True  # False: OOM refuses INVALIDATE/CATCH_UP/RESET too


class Redis(NamedTuple):
    epoch: int | None = None
    generation: int | None = None
    watermark: int | None = None
    delivered: frozenset[int] = frozenset()  # missing is empty
    values: tuple[tuple[Name, int], ...] = ()  # entry -> the version it holds
    leases: tuple[tuple[Name, str], ...] = ()  # entry -> its lease's token


class Writer(NamedTuple):
    pc: str = LEASE
    lease: str | None = None  # its write lease's token, once Redis took it
    pending: bool = False  # lease_before_commit=False: sent, not run by Redis yet
    seq: int = 0  # its change-log seq: the version it wrote
    failed: bool = False  # its invalidation was refused, timed out or skipped


class Reader(NamedTuple):
    pc: str = START
    proc: int = -1
    kind: str = ""
    polls: int = 0  # LEASE calls made
    token: str | None = None  # its lease, when LEASED
    name: Name | None = None  # the entry LEASE resolved: FILL writes there
    floor: frozenset[int] = frozenset()  # updates acknowledged when it was sent
    loaded: int = -1  # what it read from the store
    value: int = -1  # (a violation only) what it returned
    least: int = -1  # (a violation only) the oldest version it could return


class Relay(NamedTuple):
    pc: str = IDLE
    probe: bool = False  # this pass is the breaker's probe
    passes: int = 0  # passes started
    batch: tuple[int, ...] = ()  # CATCH_UP: the seqs read from the change log
    head: int = 0  # RESET: the last seq
    snapshot: frozenset[int] = frozenset()  # updates it read from the log (the gate)
    failed: int = 0  # passes failed in a row before this one (GuardedCache.relay)


class Ghost(NamedTuple):
    """A call whose caller gave up (a time-out): Redis may still run it, at any step."""

    proc: int
    script: str
    token: str = ""
    kind: str = ""  # LEASE
    name: Name | None = None  # FILL
    value: int = 0  # FILL, and INVALIDATE's warm value
    seqs: tuple[int, ...] = ()  # INVALIDATE's seqs, CATCH_UP's batch
    through: int = 0  # CATCH_UP's through, RESET's head


class Used(NamedTuple):
    evictions: int = 0
    flushes: int = 0
    crashes: int = 0
    refusals: int = 0
    timeouts: int = 0


class State(NamedTuple):
    redis: Redis
    tokens: int  # the next fresh epoch or generation token
    mode: str  # what Redis may refuse from now on: "" | "oom" | "readonly"
    log: tuple[int, ...]  # the change log: the writer of each seq (seq = index + 1)
    writers: tuple[Writer, ...]
    reader: Reader
    relays: tuple[Relay, ...]
    breakers: tuple[str, ...]
    crashed: frozenset[int]
    acked: frozenset[int]  # updates acknowledged
    # Per process: the updates of other processes committed before its last completed
    # relay pass read the log (fenced; only those whose invalidation may fail or failed):
    # it is past their window, the gate does not hold it for them.
    caught: tuple[frozenset[int], ...]
    ghosts: tuple[Ghost, ...]
    used: Used


class Effect(NamedTuple):
    """What a script does to Redis now, and replies."""

    redis: Redis
    tokens: int
    writes: bool  # it writes: a refusing Redis refuses it
    reply: str
    value: int = -1  # LEASE HIT: the version
    name: Name | None = None  # LEASE: the entry it resolved


Run = Callable[[Redis, int], Effect]
V = TypeVar("V")


def _get(pairs: tuple[tuple[Name, V], ...], name: Name) -> V | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def _put(pairs: tuple[tuple[Name, V], ...], name: Name, value: V) -> tuple[tuple[Name, V], ...]:
    kept = [pair for pair in pairs if pair[0] != name]
    return tuple(sorted([*kept, (name, value)], key=_first))


def _drop(pairs: tuple[tuple[Name, V], ...], name: Name) -> tuple[tuple[Name, V], ...]:
    return tuple(pair for pair in pairs if pair[0] != name)


def _first(pair: tuple[Name, object]) -> Name:
    return pair[0]


def _advance(watermark: int, delivered: frozenset[int]) -> tuple[int, frozenset[int]]:
    while watermark + 1 in delivered:
        watermark += 1
    return watermark, frozenset(seq for seq in delivered if seq > watermark)


def entry(name: Name) -> str:
    """An entry's key as redis.py lays it out, less the ``{ns}:v2:`` prefix."""
    epoch, generation = name
    return f"e{epoch}:item" if generation == ITEM else f"e{epoch}:list:g{generation}"


def key_name(key: Key) -> str:
    kind, name = key
    if name is None:
        return kind
    return entry(name) if kind == "value" else f"{entry(name)}:lease"


def summary(s: State) -> str:
    """A state, briefly: Redis's keys, the breakers, the updates acknowledged."""
    r = s.redis
    values = ", ".join(f"{entry(n)}=v{v}" for n, v in r.values) or "-"
    leases = ", ".join(f"{entry(n)}:lease={t}" for n, t in r.leases) or "-"
    redis = (
        f"epoch {r.epoch}, generation {r.generation}, watermark {r.watermark}, "
        f"delivered {sorted(r.delivered)}; values {values}; leases {leases}"
    )
    breakers = ", ".join(f"P{p} {b}" for p, b in enumerate(s.breakers))
    acked = ", ".join(f"W{i} v{s.writers[i].seq}" for i in sorted(s.acked)) or "-"
    return f"Redis: {redis}\nbreakers: {breakers}; acknowledged: {acked}; store: v{len(s.log)}"


def present(r: Redis, key: Key) -> bool:
    kind, name = key
    if name is not None:
        return _get(r.values if kind == "value" else r.leases, name) is not None
    if kind == "delivered":
        return bool(r.delivered)
    return {"epoch": r.epoch, "generation": r.generation, "watermark": r.watermark}[
        kind
    ] is not None


def evict(r: Redis, key: Key) -> Redis:
    kind, name = key
    if name is not None:
        if kind == "value":
            return r._replace(values=_drop(r.values, name))
        return r._replace(leases=_drop(r.leases, name))
    if kind == "epoch":
        return r._replace(epoch=None)
    if kind == "generation":
        return r._replace(generation=None)
    if kind == "watermark":
        return r._replace(watermark=None)
    return r._replace(delivered=frozenset())


def keys(r: Redis) -> list[Key]:
    scalars = [k for k in (EPOCH, GENERATION, WATERMARK, DELIVERED) if present(r, k)]
    return [*scalars, *(("value", n) for n, _ in r.values), *(("lease", n) for n, _ in r.leases)]


@dataclass(frozen=True)
class Scripts:
    """The Lua scripts of protocol version 2 (cache/redis/scripts.py), as functions of Redis's
    keys, and the keys each one reads: an eviction just before a script matters to it only
    if it reads the key."""

    zero: bool  # missing_counter_is_zero: the old integer counters
    resets: bool  # catch_up_resets

    def _current(self, value: int | None, tokens: int) -> tuple[int, int, bool]:
        """The epoch or generation to name keys with: (it, tokens, whether it was SET)."""
        if value is not None:
            return value, tokens, False
        if self.zero:
            return 0, tokens, False  # the old GET ... or '0': the names of old entries
        return tokens, tokens + 1, True

    def _replaced(self, value: int | None, tokens: int) -> tuple[int, int]:
        if self.zero:
            return (value or 0) + 1, tokens  # INCR: a missing counter starts again from 0
        return tokens, tokens + 1

    def epoch(self, r: Redis) -> int | None:
        """The epoch entries are named with now; None: a fresh one, nothing under it."""
        return 0 if r.epoch is None and self.zero else r.epoch

    def item(self, r: Redis) -> Name | None:
        epoch = self.epoch(r)
        return None if epoch is None else (epoch, ITEM)

    def page(self, r: Redis) -> Name | None:
        epoch = self.epoch(r)
        generation = 0 if r.generation is None and self.zero else r.generation
        return None if epoch is None or generation is None else (epoch, generation)

    def lease(self, r: Redis, tokens: int, kind: str, token: str) -> Effect:
        epoch, tokens, wrote = self._current(r.epoch, tokens)
        generation = ITEM
        if kind == LIST_READ:
            generation, tokens, wrote_generation = self._current(r.generation, tokens)
            wrote = wrote or wrote_generation
            if not self.zero:
                r = r._replace(generation=generation)
        if not self.zero:
            r = r._replace(epoch=epoch)
        name = (epoch, generation)
        value = _get(r.values, name)
        if value is not None:
            return Effect(r, tokens, wrote, f"HIT v{value}", value, name)
        if _get(r.leases, name) is not None:
            return Effect(r, tokens, wrote, "BUSY", name=name)
        r = r._replace(leases=_put(r.leases, name, token))
        return Effect(r, tokens, True, f"LEASED {entry(name)}", name=name)

    def lease_reads(self, r: Redis, kind: str) -> list[Key]:
        name = self.item(r) if kind == ITEM_READ else self.page(r)
        scalars = [EPOCH] if kind == ITEM_READ else [EPOCH, GENERATION]
        return scalars if name is None else [*scalars, ("value", name), ("lease", name)]

    def fill(self, r: Redis, tokens: int, name: Name, token: str, value: int) -> Effect:
        if _get(r.leases, name) != token:
            return Effect(r, tokens, False, "not stored: lease gone")
        r = r._replace(values=_put(r.values, name, value), leases=_drop(r.leases, name))
        return Effect(r, tokens, True, f"stored v{value} at {entry(name)}")

    def write_lease(self, r: Redis, tokens: int, token: str) -> Effect:
        epoch, tokens, _ = self._current(r.epoch, tokens)
        if not self.zero:
            r = r._replace(epoch=epoch)
        r = r._replace(leases=_put(r.leases, (epoch, ITEM), token))
        return Effect(r, tokens, True, f"{entry((epoch, ITEM))}:lease := {token}")

    def invalidate(
        self,
        r: Redis,
        tokens: int,
        token: str | None,
        value: int,
        seqs: tuple[int, ...],
        warm_refused: bool = False,
    ) -> Effect:
        name = self.item(r)
        if name is None:
            reply = "no epoch: nothing to delete"
        else:
            if token is not None and not warm_refused and _get(r.leases, name) == token:
                values = _put(r.values, name, value)
                reply = f"warm: stored v{value} at {entry(name)}"
            else:
                values = _drop(r.values, name)
                reply = f"deleted {entry(name)}"
            r = r._replace(values=values, leases=_drop(r.leases, name))
        generation, tokens = self._replaced(r.generation, tokens)
        r = r._replace(generation=generation)
        reply += f", generation := g{generation}"
        if r.watermark is not None:
            news = frozenset(seq for seq in seqs if seq > r.watermark)
            watermark, delivered = _advance(r.watermark, r.delivered | news)
            r = r._replace(watermark=watermark, delivered=delivered)
            reply += f", watermark {watermark}, delivered {sorted(delivered)}"
        else:
            reply += ", no watermark"
        return Effect(r, tokens, True, reply)

    def invalidate_reads(self, r: Redis, warm: bool) -> list[Key]:
        name = self.item(r)
        found = [EPOCH, WATERMARK, DELIVERED] + ([GENERATION] if self.zero else [])
        return found if name is None or not warm else [*found, ("lease", name)]

    def catch_up(self, r: Redis, tokens: int, batch: tuple[int, ...], through: int) -> Effect:
        mark = r.watermark
        if mark is None:
            if self.resets:
                return self.reset(r, tokens, through, "no watermark: ")
            return Effect(r, tokens, False, "no watermark: nothing done")
        due = [seq for seq in batch if seq > mark and seq not in r.delivered]
        reply = f"applied {due}"
        if due:
            name = self.item(r)
            if name is not None:
                r = r._replace(values=_drop(r.values, name), leases=_drop(r.leases, name))
            generation, tokens = self._replaced(r.generation, tokens)
            r = r._replace(generation=generation)
            reply += f" (deleted the item, generation := g{generation})"
        watermark, delivered = _advance(max(mark, through), r.delivered)
        r = r._replace(watermark=watermark, delivered=delivered)
        return Effect(r, tokens, True, f"{reply}, watermark := {watermark}")

    def catch_up_reads(self) -> list[Key]:
        return [WATERMARK, DELIVERED, EPOCH] + ([GENERATION] if self.zero else [])

    def reset(self, r: Redis, tokens: int, head: int, why: str = "") -> Effect:
        epoch, tokens = self._replaced(r.epoch, tokens)
        watermark, delivered = _advance(max(r.watermark or 0, head), r.delivered)
        r = r._replace(epoch=epoch, watermark=watermark, delivered=delivered)
        return Effect(r, tokens, True, f"{why}epoch := e{epoch}, watermark := {watermark}")

    def reset_reads(self) -> list[Key]:
        return [WATERMARK, DELIVERED] + ([EPOCH] if self.zero else [])

    def run(self, r: Redis, tokens: int, g: Ghost) -> Effect:
        """A call Redis runs after its caller gave up on it."""
        if g.script == "LEASE":
            return self.lease(r, tokens, g.kind, g.token)
        if g.script == "FILL":
            assert g.name is not None
            return self.fill(r, tokens, g.name, g.token, g.value)
        if g.script == "WRITE_LEASE":
            return self.write_lease(r, tokens, g.token)
        if g.script == "INVALIDATE":
            return self.invalidate(r, tokens, g.token or None, g.value, g.seqs)
        if g.script == "CATCH_UP":
            return self.catch_up(r, tokens, g.seqs, g.through)
        return self.reset(r, tokens, g.through)

    def reads(self, r: Redis, g: Ghost) -> list[Key]:
        if g.script == "LEASE":
            return self.lease_reads(r, g.kind)
        if g.script == "FILL":
            assert g.name is not None
            return [("lease", g.name)]
        if g.script == "WRITE_LEASE":
            return [EPOCH]
        if g.script == "INVALIDATE":
            return self.invalidate_reads(r, bool(g.token))
        if g.script == "CATCH_UP":
            return self.catch_up_reads()
        return self.reset_reads()


# What OOM refuses: a script whose first write grows memory (protocol v2). The others
# start with a removal, and the warm SET of INVALIDATE is tried under pcall.
OOM_REFUSED = frozenset({"LEASE", "FILL", "WRITE_LEASE", "PROBE_SET"})
OOM_SAFE = frozenset({"INVALIDATE", "CATCH_UP", "RESET"})


class CacheProtocol:
    """The model: its initial state, every step enabled in a state (of every actor, with
    every outcome), and the check of the promise."""

    def __init__(self, config: Config | None = None) -> None:
        self.cfg = cfg = config or Config()
        self.scripts = Scripts(cfg.missing_counter_is_zero, cfg.catch_up_resets)
        self.all_writers = frozenset(range(len(cfg.writer_procs)))
        self.oom_refused = OOM_REFUSED if cfg.oom_safe_scripts else OOM_REFUSED | OOM_SAFE
        # Removing a key can expose an old entry only where a missing counter reads as 0.
        self.faults_anywhere = not cfg.reduce or cfg.missing_counter_is_zero
        self._canonical: dict[tuple[Redis, tuple[Name, ...]], tuple[Redis, int, Rename]] = {}
        # Two updates in one process, or one in each of two processes: swapping them (and
        # their processes) maps every run to another, so one of each pair is explored.
        procs = cfg.writer_procs
        self.swaps_procs = cfg.processes == 2 and sorted(procs) == [0, 1]
        self.symmetric = len(procs) == 2 and (self.swaps_procs or procs[0] == procs[1])

    def run(self, max_states: int = 5_000_000) -> Outcome[State]:
        key = self.canonical if self.symmetric else None
        return explore(self.initial(), self.successors, self.check, key=key, max_states=max_states)

    def initial(self) -> State:
        cfg = self.cfg
        values: tuple[tuple[Name, int], ...] = ()
        if cfg.warm:
            values = (((0, ITEM), 0), ((0, 0), 0))
        return State(
            redis=Redis(epoch=0, generation=0, watermark=0, values=values),
            tokens=1,
            mode="",
            log=(),
            writers=tuple(Writer() for _ in cfg.writer_procs),
            reader=Reader() if cfg.reader else Reader(DONE),
            relays=tuple(Relay() for _ in range(cfg.processes)),
            breakers=tuple(CLOSED for _ in range(cfg.processes)),
            crashed=frozenset(),
            acked=frozenset(),
            caught=tuple(frozenset() for _ in range(cfg.processes)),
            ghosts=(),
            used=Used(),
        )

    # -- the promise ----------------------------------------------------------------------

    def in_window(self, s: State, i: int, proc: int) -> bool:
        """Whether ``proc`` may still find in the cache what update ``i`` replaced: its
        invalidation failed, in another process, and ``proc`` has not completed a relay
        pass that read it from the log (its commit, so it applied it)."""
        w = s.writers[i]
        return w.failed and self.cfg.writer_procs[i] != proc and i not in s.caught[proc]

    def gated(self, s: State, proc: int) -> bool:
        """The gate (fenced): ``proc`` reads the store, not the cache, while it is in the
        window of an update acknowledged (the fence: every failed one is; the window is
        what the real gate, a length of time, implies once the fence has passed)."""
        if not self.cfg.fenced:
            return False
        return any(self.in_window(s, i, proc) for i in range(len(s.writers)))

    def least(self, s: State, among: frozenset[int]) -> int:
        """The oldest version a read may return, given the updates ``among`` acknowledged
        before it was sent (versions are seqs: the store's commit order). No excuse."""
        return max((s.writers[i].seq for i in among), default=0)

    def check(self, s: State) -> str | None:
        r = s.reader
        if r.value >= 0:
            return (
                f"P{r.proc}'s {r.kind} read returned v{r.value}, but v{r.least} was "
                "acknowledged before it was sent"
            )
        version = len(s.log)
        least = self.least(s, s.acked)
        if not least:
            return None  # nothing acknowledged: nothing is too old
        everything = s.acked == self.all_writers
        item, page = self.scripts.item(s.redis), self.scripts.page(s.redis)
        for p in range(self.cfg.processes):
            if p in s.crashed or s.breakers[p] not in READS_CACHE or self.gated(s, p):
                continue  # no reads, or they go to the store
            for kind, name in ((ITEM_READ, item), (LIST_READ, page)):
                value = None if name is None else _get(s.redis.values, name)
                if value is None or value >= least:
                    continue
                what = f"a {kind} read sent now to P{p} would HIT v{value}"
                if everything and least == version:
                    return f"{what}, but every update is acknowledged, the store holds v{version}"
                return f"{what}, but v{least} is acknowledged"
        return None

    # -- steps --------------------------------------------------------------------------

    def successors(self, s: State) -> Iterator[tuple[str, State]]:
        for i in range(len(s.writers)):
            for label, after in self._writer(s, i):
                yield label, self._normalize(after)
        for label, after in self._reader(s):
            yield label, self._normalize(after)
        for p in range(self.cfg.processes):
            for label, after in self._relay(s, p):
                yield label, self._normalize(after)
        for label, after in self._environment(s):
            yield label, self._normalize(after)

    def _faults(self, s: State, reads: list[Key]) -> Iterator[tuple[str, State]]:
        """The state a Redis step runs in: as it is, or with keys the step reads evicted
        (or everything flushed) just before it (the module docstring)."""
        yield "", s
        used, cfg = s.used, self.cfg
        if self.faults_anywhere or (
            used.flushes >= cfg.flushes and used.evictions >= cfg.evictions
        ):
            return
        if used.flushes < cfg.flushes and s.redis != Redis():
            flushed = used._replace(flushes=used.flushes + 1)
            yield "[FLUSHDB] ", s._replace(redis=Redis(), used=flushed)
        budget = cfg.evictions - used.evictions
        found = [key for key in reads if present(s.redis, key)]
        for n in range(1, min(budget, len(found)) + 1):
            for gone in combinations(found, n):
                r = s.redis
                for key in gone:
                    r = evict(r, key)
                names = ", ".join(key_name(key) for key in gone)
                evicted = used._replace(evictions=used.evictions + n)
                yield f"[{names} evicted] ", s._replace(redis=r, used=evicted)

    def _call(
        self,
        s: State,
        p: int,
        script: str,
        run: Run,
        reads: list[Key],
        ghost: Ghost | None,
        at_once: bool,
        counts: bool = True,
    ) -> Iterator[tuple[str, State, Effect | None]]:
        """The outcomes of one call from process ``p``: (what happened, the state after,
        the script's effect if Redis ran it and replied). A refusal does nothing and trips
        the breaker at once; a time-out trips it too (``at_once``: an invalidation, a
        probe) or counts toward its threshold (guard.py), unless not ``counts`` (a write
        lease: GuardedCache.lease_for_write)."""
        for fault, t in self._faults(s, reads):
            effect = run(t.redis, t.tokens)
            breakers = t.breakers
            if breakers[p] == COUNTED:  # CircuitBreaker.record_success
                breakers = _set(breakers, p, CLOSED)
            ran = t._replace(redis=effect.redis, tokens=effect.tokens, breakers=breakers)
            yield f"{fault}-> {effect.reply}", ran, effect
            if effect.writes:
                for mode in self._refusing(t, script):
                    refused = self._trip(self._refused(t, mode), p)
                    yield f"{fault}-> refused ({mode.upper()}), nothing done", refused, None
        if s.used.timeouts < self.cfg.timeouts:
            late = s._replace(used=s.used._replace(timeouts=s.used.timeouts + 1))
            fail = self._trip if at_once else self._count if counts else _unchanged
            yield "-> timed out, not run", fail(late, p), None
            for fault, t in self._faults(late, reads):
                effect = run(t.redis, t.tokens)
                ran = t._replace(redis=effect.redis, tokens=effect.tokens)
                yield f"{fault}-> timed out, but ran: {effect.reply}", fail(ran, p), None
            if ghost is not None and self.cfg.late_timeouts:
                ghosted = late._replace(ghosts=(*s.ghosts, ghost))
                yield "-> timed out, Redis may run it later", fail(ghosted, p), None

    def _refusing(self, s: State, script: str) -> list[str]:
        """The modes in which Redis may refuse ``script`` (a write) now."""
        if s.used.refusals >= self.cfg.refusals:
            return []
        modes = [s.mode] if s.mode else ["oom", "readonly"]
        return [m for m in modes if m == "readonly" or script in self.oom_refused]

    def _refused(self, s: State, mode: str) -> State:
        return s._replace(mode=mode, used=s.used._replace(refusals=s.used.refusals + 1))

    def _trip(self, s: State, p: int) -> State:
        return s._replace(breakers=_set(s.breakers, p, OPEN))

    def _count(self, s: State, p: int) -> State:
        # CircuitBreaker.record_failure: the second failure in a row trips it.
        state = s.breakers[p]
        after = COUNTED if state == CLOSED else OPEN if state == COUNTED else state
        return s._replace(breakers=_set(s.breakers, p, after))

    # An update (EventCache.write).

    def _writer(self, s: State, i: int) -> Iterator[tuple[str, State]]:
        w = s.writers[i]
        p = self.cfg.writer_procs[i]
        if w.pc == DONE or p in s.crashed:
            return
        who = f"P{p} W{i}:"
        if w.pc == LEASE:
            if s.breakers[p] not in READS_CACHE:
                label = f"{who} WRITE_LEASE skipped, breaker {s.breakers[p]}: no lease"
                yield f"{label} ({REF_WRITE_LEASE})", _writer(s, i, w._replace(pc=COMMIT))
            elif not self.cfg.lease_before_commit:
                label = f"{who} WRITE_LEASE sent, not awaited ({REF_PENDING})"
                yield label, _writer(s, i, w._replace(pc=COMMIT, pending=True))
            else:
                token = f"W{i}"

                def run(r: Redis, tokens: int) -> Effect:
                    return self.scripts.write_lease(r, tokens, token)

                ghost = Ghost(p, "WRITE_LEASE", token=token)
                for outcome, t, effect in self._call(
                    s, p, "WRITE_LEASE", run, [EPOCH], ghost, False, counts=False
                ):
                    lease = None if effect is None else token
                    label = f"{who} WRITE_LEASE {outcome} ({REF_WRITE_LEASE})"
                    yield label, _writer(t, i, w._replace(pc=COMMIT, lease=lease))
        elif w.pc == COMMIT:
            seq = len(s.log) + 1
            label = f"{who} store commits v{seq}, change-log seq {seq} ({REF_COMMIT})"
            committed = w._replace(pc=INVALIDATE, seq=seq)
            yield label, _writer(s._replace(log=(*s.log, i)), i, committed)
        else:
            yield from self._invalidate(s, i, p, who)

    def _invalidate(self, s: State, i: int, p: int, who: str) -> Iterator[tuple[str, State]]:
        w = s.writers[i]
        gave_up = ""
        if w.pending:  # the old code gave up a lease not taken by now; Redis may still run it
            ghosts = (*s.ghosts, Ghost(p, "WRITE_LEASE", token=f"W{i}"))
            s = _writer(s._replace(ghosts=ghosts), i, w._replace(pending=False))
            gave_up = "lease not taken yet, given up; "
        fill = "" if w.lease is None else f"warm v{w.seq} if the lease is {w.lease}, "
        what = f"{who} {gave_up}INVALIDATE({fill}seq {w.seq})"
        acked = s.acked | {i}
        probing = s.breakers[p] == HALF_OPEN and self.cfg.invalidate_during_probe
        if s.breakers[p] not in READS_CACHE and not probing:
            skipped = "skipped, breaker " + s.breakers[p]
            label = f"{what} {skipped}; {self._acknowledged(True)}"
            yield label, _done_writer(s._replace(acked=acked), i, failed=True)
            return

        def run(r: Redis, tokens: int) -> Effect:
            return self.scripts.invalidate(r, tokens, w.lease, w.seq, (w.seq,))

        reads = self.scripts.invalidate_reads(s.redis, w.lease is not None)
        ghost = Ghost(p, "INVALIDATE", token=w.lease or "", value=w.seq, seqs=(w.seq,))
        for outcome, t, effect in self._call(s, p, "INVALIDATE", run, reads, ghost, True):
            label = f"{what} {outcome}; {self._acknowledged(effect is None)}"
            yield label, _done_writer(t._replace(acked=acked), i, failed=effect is None)
        if w.lease is not None and "oom" in self._refusing(s, "FILL") and self.cfg.oom_safe_scripts:
            # The warm SET, tried first under pcall, refused: the item is deleted instead.
            effect = self.scripts.invalidate(s.redis, s.tokens, w.lease, w.seq, (w.seq,), True)
            t = self._refused(s, "oom")._replace(redis=effect.redis, tokens=effect.tokens)
            label = f"{what} -> warm SET refused (OOM), {effect.reply}"
            yield (
                f"{label}; {self._acknowledged(False)}",
                _done_writer(t._replace(acked=acked), i, False),
            )

    def _acknowledged(self, failed: bool) -> str:
        """How an update is acknowledged: at once, or (its invalidation failed, fenced)
        once the fence has passed since its commit. That wait is not a step: what it buys
        is the gate of every process still in the update's window (``gated``)."""
        if failed and self.cfg.fenced:
            return f"acknowledged after the fence ({REF_INVALIDATE}; {REF_FENCE})"
        return f"acknowledged ({REF_INVALIDATE})"

    # The read (ReadThrough.read: LEASE, the store on a miss, FILL if LEASED).

    def _reader(self, s: State) -> Iterator[tuple[str, State]]:
        r = s.reader
        if r.pc == DONE:
            return
        if r.pc == START:
            for p in range(self.cfg.processes):
                if p not in s.crashed:
                    for kind in self.cfg.reads:
                        sent = r._replace(proc=p, kind=kind, floor=s.acked)
                        yield from self._lease(s._replace(reader=sent), "sent; LEASE")
        elif r.proc in s.crashed:
            return
        elif r.pc == POLL:
            yield from self._lease(s, "looks again; LEASE")
        else:
            yield from self._fill(s)

    def _lease(self, s: State, what: str) -> Iterator[tuple[str, State]]:
        r = s.reader
        p, kind = r.proc, r.kind
        what = f"P{p} R: {kind} read {what}"
        version = len(s.log)
        # Steps that only end the read are left out (the module docstring).
        prune = self.cfg.reduce
        if s.breakers[p] not in READS_CACHE:
            label = f"{what} skipped, breaker {s.breakers[p]}; store read, returns v{version}"
            if not prune:
                yield f"{label} ({REF_BYPASS})", self._returns(s, version)
            return
        if self.gated(s, p):  # checked before the LEASE is sent, at each look
            label = f"{what} gated: relay behind; store read, returns v{version}, no fill"
            if not prune:
                yield f"{label} ({REF_GATE})", self._returns(s, version)
            return
        token = f"R{r.polls}"

        def run(r: Redis, tokens: int) -> Effect:
            return self.scripts.lease(r, tokens, kind, token)

        reads = self.scripts.lease_reads(s.redis, kind)
        ghost = Ghost(p, "LEASE", token=token, kind=kind)
        polls = r.polls + 1
        for outcome, t, effect in self._call(s, p, "LEASE", run, reads, ghost, False):
            label = f"{what} {outcome} ({REF_LEASE})"
            if effect is None:  # CacheUnavailable: the store, no fill
                yield f"{label}; store read, returns v{version}", self._returns(t, version)
            elif effect.value < 0 and effect.reply != "BUSY":
                # From here it returns what it loaded, as new as every update acknowledged
                # before it was sent: what those were no longer matters.
                leased = r._replace(
                    pc=FILL,
                    polls=polls,
                    token=token,
                    name=effect.name,
                    floor=frozenset(),
                    loaded=version,
                )
                yield f"{label}; store read v{version}", t._replace(reader=leased)
            elif prune:
                continue  # a HIT, or BUSY (it looks again later, or reads the store)
            elif effect.value >= 0:
                yield f"{label}; returns v{effect.value}", self._returns(t, effect.value)
            else:
                if polls < self.cfg.polls:
                    yield label, t._replace(reader=r._replace(pc=POLL, polls=polls))
                label += f"; gives up: store read, returns v{version}, no fill"
                yield label, self._returns(t, version)

    def _fill(self, s: State) -> Iterator[tuple[str, State]]:
        r = s.reader
        p, name, token, loaded = r.proc, r.name, r.token, r.loaded
        assert name is not None
        assert token is not None
        if s.breakers[p] not in READS_CACHE:
            label = f"P{p} R: FILL skipped, breaker {s.breakers[p]}; returns v{loaded}"
            yield f"{label} ({REF_FILL})", self._returns(s, loaded)
            return

        def run(r: Redis, tokens: int) -> Effect:
            return self.scripts.fill(r, tokens, name, token, loaded)

        ghost = Ghost(p, "FILL", token=token, name=name, value=loaded)
        for outcome, t, _ in self._call(s, p, "FILL", run, [("lease", name)], ghost, False):
            label = f"P{p} R: FILL v{loaded} {outcome}; returns v{loaded} ({REF_FILL})"
            yield label, self._returns(t, loaded)

    def _returns(self, s: State, value: int) -> State:
        """The read ends: only a violation keeps what it returned (for check())."""
        r = s.reader
        least = self.least(s, r.floor)
        if value < least:
            return s._replace(reader=r._replace(pc=DONE, value=value, least=least))
        return s._replace(reader=Reader(DONE))

    # The relay of process p (GuardedCache._maintain: a relay pass, or a probe while open).

    def _relay(self, s: State, p: int) -> Iterator[tuple[str, State]]:
        a = s.relays[p]
        if p in s.crashed:
            return
        if a.pc == IDLE:
            yield from self._relay_start(s, p)
        elif a.pc in (CATCH_UP, RESET):
            yield from self._relay_apply(s, p)
        else:
            yield from self._probe_set(s, p)

    def _relay_start(self, s: State, p: int) -> Iterator[tuple[str, State]]:
        a = s.relays[p]
        if a.passes >= self.cfg.relay_passes:
            return
        probe = s.breakers[p] == OPEN
        if probe:  # CircuitBreaker.begin_probe
            s = s._replace(breakers=_set(s.breakers, p, HALF_OPEN))
        what = f"P{p} relay: {'probe: ' if probe else ''}GET watermark"
        ref = REF_PROBE if probe else REF_RELAY
        head = len(s.log)
        snapshot = self._snapshot(s, p)
        passes = a.passes + 1
        for fault, t in self._faults(s, [WATERMARK]):
            mark = t.redis.watermark
            batch = tuple(range((mark or 0) + 1, head + 1))
            if mark is None:
                begun = Relay(RESET, probe, passes, head=head, snapshot=snapshot)
            elif batch:
                begun = Relay(CATCH_UP, probe, passes, batch, snapshot=snapshot)
            elif probe:
                begun = Relay(PROBE_SET, probe, passes, snapshot=snapshot)
            elif fault or snapshot != s.caught[p] or not self.cfg.reduce:
                begun = Relay(IDLE, probe, passes, snapshot=snapshot)
            else:
                continue  # a pass that would change nothing: the relay keeps it for later
            label = f"{what} {fault}-> {mark}, changes {list(batch)}, head {head} ({ref})"
            after = _relay(t, p, begun)
            yield label, self._finish(after, p) if begun.pc == IDLE else after
        if s.used.timeouts < self.cfg.timeouts:
            t = s._replace(used=s.used._replace(timeouts=s.used.timeouts + 1))
            begun = Relay(IDLE, probe, passes, failed=a.failed)
            label = f"{what} -> timed out: pass failed ({ref})"
            failed = self._trip(t, p) if probe else self._count(t, p)
            yield label, self._failed_pass(_relay(failed, p, begun), p)

    def _relay_apply(self, s: State, p: int) -> Iterator[tuple[str, State]]:
        a = s.relays[p]
        scripts = self.scripts
        run: Run
        if a.pc == CATCH_UP:
            script, ref = "CATCH_UP", REF_CATCH_UP
            batch = a.batch
            through = batch[-1]  # max(mark, min(last, head)): SQLite settles at commit

            def run(r: Redis, tokens: int) -> Effect:
                return scripts.catch_up(r, tokens, batch, through)

            reads = scripts.catch_up_reads()
            ghost = Ghost(p, script, seqs=batch, through=through)
            what = f"P{p} relay: CATCH_UP({list(batch)}, through={through})"
        else:
            script, ref = "RESET", REF_RESET
            head = a.head

            def run(r: Redis, tokens: int) -> Effect:
                return scripts.reset(r, tokens, head)

            reads = scripts.reset_reads()
            ghost = Ghost(p, script, through=head)
            what = f"P{p} relay: RESET(head={head})"
        if not a.probe and s.breakers[p] not in READS_CACHE:
            label = f"{what} skipped, breaker {s.breakers[p]}: pass failed ({ref})"
            yield label, self._abandon(s, p)
            return
        for outcome, t, effect in self._call(s, p, script, run, reads, ghost, a.probe):
            label = f"{what} {outcome} ({ref})"
            if effect is None:
                yield label, self._failed_pass(t, p)
            elif a.probe:
                yield label, _relay(t, p, a._replace(pc=PROBE_SET))
            else:
                yield label, self._finish(t, p)

    def _probe_set(self, s: State, p: int) -> Iterator[tuple[str, State]]:
        effect = Effect(s.redis, s.tokens, True, "OK")

        def run(r: Redis, tokens: int) -> Effect:
            return effect

        for outcome, t, done in self._call(s, p, "PROBE_SET", run, [], None, True):
            if done is None:
                why = ": probe failed, stays open"
            elif self.cfg.invalidate_during_probe and t.breakers[p] != HALF_OPEN:
                why = ", but an invalidation was skipped meanwhile: stays open"
            else:
                label = f"P{p} relay: probe: SET probe key {outcome}: closed ({REF_PROBE_SET})"
                yield label, self._finish(t._replace(breakers=_set(t.breakers, p, CLOSED)), p)
                continue
            label = f"P{p} relay: probe: SET probe key {outcome}{why} ({REF_PROBE_SET})"
            yield label, self._abandon(t, p)

    def _failed_pass(self, s: State, p: int) -> State:
        """A pass that failed (GuardedCache.relay): it counted against the breaker (a
        refusal or a probe's failure opened it); the second in a row opens it. It ends
        no window (the gate's clock is the start of the last pass *completed*): until the
        breaker opens, p still reads the cache, unless the gate holds it."""
        a = s.relays[p]
        if s.breakers[p] in READS_CACHE and a.failed + 1 < RELAY_FAILURES:
            return _relay(s, p, Relay(passes=a.passes, failed=a.failed + 1))
        return self._abandon(self._trip(s, p), p)

    def _abandon(self, s: State, p: int) -> State:
        """A pass ends without completing, its breaker open: it ends no window."""
        return _relay(s, p, Relay(passes=s.relays[p].passes))

    def _finish(self, s: State, p: int) -> State:
        """A pass completes (a relay pass, or a probe closing the breaker): ``p`` is past
        the window of every update it read from the log (GuardedCache.relay and .probe
        set _current_since to its start, which the gate reads)."""
        a = s.relays[p]
        caught = _set(s.caught, p, a.snapshot)
        return _relay(s._replace(caught=caught), p, Relay(passes=a.passes))

    def _snapshot(self, s: State, p: int) -> frozenset[int]:
        """The updates a relay pass of ``p`` starting now reads from the log (committed),
        of those whose window it could end: of another process, not acknowledged with
        their invalidation done. Its start and its store read are one step: these are
        all that committed before it started, which the real gate trusts it with."""
        if not self.cfg.fenced:
            return frozenset()  # nothing reads it
        procs = self.cfg.writer_procs
        return frozenset(
            i
            for i, w in enumerate(s.writers)
            if w.seq and procs[i] != p and (w.pc != DONE or w.failed)
        )

    # The environment.

    def _environment(self, s: State) -> Iterator[tuple[str, State]]:
        cfg, used = self.cfg, s.used
        if self.faults_anywhere:
            if used.evictions < cfg.evictions:
                evicted = s._replace(used=used._replace(evictions=used.evictions + 1))
                for key in keys(s.redis):
                    gone = evicted._replace(redis=evict(s.redis, key))
                    yield f"ENV: {key_name(key)} evicted (or expired, or DEL)", gone
            if used.flushes < cfg.flushes and s.redis != Redis():
                flushed = s._replace(redis=Redis(), used=used._replace(flushes=used.flushes + 1))
                yield "ENV: FLUSHDB", flushed
        if used.crashes < cfg.crashes:
            for p in range(cfg.processes):
                if p not in s.crashed:
                    crashed = s._replace(
                        crashed=s.crashed | {p}, used=used._replace(crashes=used.crashes + 1)
                    )
                    yield f"ENV: P{p} crashes (SIGKILL)", self._forget(crashed, p)
        for j, ghost in enumerate(s.ghosts):
            rest = s._replace(ghosts=(*s.ghosts[:j], *s.ghosts[j + 1 :]))
            for fault, t in self._faults(rest, self.scripts.reads(rest.redis, ghost)):
                effect = self.scripts.run(t.redis, t.tokens, ghost)
                label = f"REDIS: {fault}runs P{ghost.proc}'s timed-out {ghost.script}"
                ran = t._replace(redis=effect.redis, tokens=effect.tokens)
                yield f"{label} -> {effect.reply}", ran
        for i, w in enumerate(s.writers):
            if w.pending:
                token = f"W{i}"
                for fault, t in self._faults(s, [EPOCH]):
                    effect = self.scripts.write_lease(t.redis, t.tokens, token)
                    ran = t._replace(redis=effect.redis, tokens=effect.tokens)
                    label = f"REDIS: {fault}runs W{i}'s WRITE_LEASE -> {effect.reply}"
                    taken = w._replace(pending=False, lease=token)
                    yield f"{label} ({REF_PENDING})", _writer(ran, i, taken)

    # -- one state for states that differ in nothing that matters ---------------------------

    def _forget(self, s: State, p: int) -> State:
        """What of a crashed process is read again: its acknowledged updates."""
        reader = s.reader
        if reader.proc == p and reader.pc != DONE:
            reader = Reader(DONE)
        writers = tuple(
            (Writer(DONE, seq=w.seq, failed=w.failed) if i in s.acked else Writer(DONE))
            if self.cfg.writer_procs[i] == p
            else w
            for i, w in enumerate(s.writers)
        )
        return s._replace(
            reader=reader,
            writers=writers,
            relays=_set(s.relays, p, Relay(passes=self.cfg.relay_passes)),
            breakers=_set(s.breakers, p, OPEN),
            caught=_set(s.caught, p, frozenset()),
        )

    def _normalize(self, s: State) -> State:
        used = s.used
        if used.timeouts >= self.cfg.timeouts and COUNTED in s.breakers:
            # No time-out left to count: one failure counted can never trip it.
            s = s._replace(breakers=tuple(CLOSED if b == COUNTED else b for b in s.breakers))
        if s.mode and used.refusals >= self.cfg.refusals:
            s = s._replace(mode="")  # what Redis would refuse, once it refuses nothing more
        if self.cfg.fenced:
            s = self._past(s)
        if self.cfg.reduce:
            s = self._unheld(s)
        if self.cfg.missing_counter_is_zero:
            return s  # integer counters come back to old names: that is the point
        held = tuple(g.name for g in s.ghosts if g.name is not None)
        if s.reader.name is not None:
            held += (s.reader.name,)
        found = self._canonical.get((s.redis, held))
        if found is None:
            found = self._canonical[s.redis, held] = _canonical(s.redis, held)
        redis, tokens, rename = found
        if redis is s.redis and not held:
            return s if tokens == s.tokens else s._replace(tokens=tokens)
        reader = s.reader
        if reader.name is not None:
            reader = reader._replace(name=rename(reader.name))
        ghosts = tuple(g if g.name is None else g._replace(name=rename(g.name)) for g in s.ghosts)
        return s._replace(redis=redis, tokens=tokens, reader=reader, ghosts=ghosts)

    def _past(self, s: State) -> State:
        """Forget which windows a process is past where that can no longer matter: an
        update acknowledged with its invalidation done (or never to be acknowledged), and
        every window of a process whose breaker is open (or half-open). It reads the
        cache again only once a probe completes, which sets them anew (``_finish``)."""
        settled = [i for i, w in enumerate(s.writers) if w.pc == DONE and not w.failed]
        caught = tuple(
            (c.difference(settled) if settled else c) if b in READS_CACHE else frozenset()
            for c, b in zip(s.caught, s.breakers, strict=True)
        )
        if caught != s.caught:
            s = s._replace(caught=caught)
        if settled and any(not a.snapshot.isdisjoint(settled) for a in s.relays):
            relays = tuple(a._replace(snapshot=a.snapshot.difference(settled)) for a in s.relays)
            s = s._replace(relays=relays)
        return s

    def _unheld(self, s: State) -> State:
        """Leave out a FILL whose lease is gone for good (lease tokens are unique), and
        leases whose token no caller holds (the module docstring)."""
        r = s.reader
        if (
            r.pc == FILL
            and _get(s.redis.leases, r.name or (0, 0)) != r.token
            and self.cfg.timeouts - s.used.timeouts <= 1
        ):
            # It could only do nothing, or time out: with no time-out left to count with
            # it (two in one run), that is nothing either.
            s = s._replace(reader=Reader(DONE))
        leases = s.redis.leases
        if leases and not all(self._held(s, token) for _, token in leases):
            held = tuple(pair for pair in leases if self._held(s, pair[1]))
            s = s._replace(redis=s.redis._replace(leases=held))
        return s

    def _held(self, s: State, token: str) -> bool:
        """Whether a caller can still present the lease ``token``."""
        if token[0] == "W":
            w = s.writers[int(token[1:])]
            if w.lease or w.pending:
                return True
        elif s.reader.pc == FILL and s.reader.token == token:
            return True
        return any(g.token == token for g in s.ghosts)

    def canonical(self, s: State) -> State:
        """One of ``s`` and its mirror image (the updates swapped), the same for both."""
        a, b = _signature(s.writers[0]), _signature(s.writers[1])
        if a < b:
            return s
        mirrored = self.mirror(s)
        if a > b:
            return mirrored
        mine, theirs = hash(s), hash(mirrored)
        if mine != theirs:
            return s if mine < theirs else mirrored
        return s if s == mirrored or repr(s) <= repr(mirrored) else mirrored

    def mirror(self, s: State) -> State:
        """``s`` with the two updates swapped, and their processes if they differ."""
        swap = self.swaps_procs
        r, reader = s.redis, s.reader
        if r.leases:
            leases = tuple(sorted(((n, _MIRRORED.get(t, t)) for n, t in r.leases), key=_first))
            r = r._replace(leases=leases)
        w1, w0 = s.writers
        if w0.lease is not None:
            w0 = w0._replace(lease=_MIRRORED[w0.lease])
        if w1.lease is not None:
            w1 = w1._replace(lease=_MIRRORED[w1.lease])
        if reader.floor or (swap and reader.proc >= 0):
            proc = 1 - reader.proc if swap and reader.proc >= 0 else reader.proc
            reader = reader._replace(proc=proc, floor=_SWAPPED[reader.floor])
        relays = tuple(
            a._replace(snapshot=_SWAPPED[a.snapshot]) if a.snapshot else a for a in s.relays
        )
        caught = tuple(_SWAPPED[c] for c in s.caught)
        ghosts = s.ghosts and tuple(
            g._replace(proc=1 - g.proc if swap else g.proc, token=_MIRRORED.get(g.token, g.token))
            for g in s.ghosts
        )
        return State(
            r,
            s.tokens,
            s.mode,
            tuple(1 - i for i in s.log),
            (w0, w1),
            reader,
            relays[::-1] if swap else relays,
            s.breakers[::-1] if swap else s.breakers,
            frozenset(1 - p for p in s.crashed) if swap else s.crashed,
            _SWAPPED[s.acked],
            caught[::-1] if swap else caught,
            ghosts,
            s.used,
        )


Rename = Callable[[Name], Name]

_MIRRORED = {"W0": "W1", "W1": "W0"}
_SWAPPED = {frozenset(ids): frozenset(1 - i for i in ids) for ids in ((), (0,), (1,), (0, 1))}
_PCS = {LEASE: 0, COMMIT: 1, INVALIDATE: 2, DONE: 3}


def _signature(w: Writer) -> tuple[int, int, bool, bool, bool]:
    return _PCS[w.pc], w.seq, w.failed, w.lease is not None, w.pending


def _canonical(r: Redis, held: tuple[Name, ...]) -> tuple[Redis, int, Rename]:
    """Redis without the entries nothing can name again (neither under the current epoch
    and generation nor held by a caller), its tokens renumbered in the order of what refers
    to them: fresh tokens are only ever compared for equality."""

    def reachable(name: Name) -> bool:
        epoch, generation = name
        return (epoch == r.epoch and generation in (ITEM, r.generation)) or name in held

    values = [(n, v) for n, v in r.values if reachable(n)]
    leases = [(n, t) for n, t in r.leases if reachable(n)]
    epochs: dict[int, int] = {}
    generations: dict[int, int] = {}
    names = [*held, *(n for n, _ in values), *(n for n, _ in leases)]
    for epoch in (r.epoch, *(n[0] for n in names)):
        if epoch is not None and epoch not in epochs:
            epochs[epoch] = len(epochs)
    for generation in (r.generation, *(n[1] for n in names)):
        if generation is not None and generation != ITEM and generation not in generations:
            generations[generation] = len(generations)

    def rename(name: Name) -> Name:
        epoch, generation = name
        return epochs[epoch], generations.get(generation, ITEM)

    redis = r._replace(
        epoch=None if r.epoch is None else epochs[r.epoch],
        generation=None if r.generation is None else generations[r.generation],
        values=tuple(sorted(((rename(n), v) for n, v in values), key=_first)),
        leases=tuple(sorted(((rename(n), t) for n, t in leases), key=_first)),
    )
    if redis == r:
        redis = r  # the very object: callers then skip renaming
    return redis, max(len(epochs), len(generations)), rename


def _unchanged(s: State, p: int) -> State:
    return s


def _set(items: tuple[T, ...], index: int, value: T) -> tuple[T, ...]:
    return (*items[:index], value, *items[index + 1 :])


def _writer(s: State, i: int, w: Writer) -> State:
    return s._replace(writers=_set(s.writers, i, w))


def _done_writer(s: State, i: int, failed: bool) -> State:
    """An update acknowledged: only its version and whether its invalidation failed
    still matter."""
    return _writer(s, i, Writer(DONE, seq=s.writers[i].seq, failed=failed))


def _relay(s: State, p: int, relay: Relay) -> State:
    return s._replace(relays=_set(s.relays, p, relay))
