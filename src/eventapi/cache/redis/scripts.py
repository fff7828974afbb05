"""The cache's Lua scripts: each operation is one script, atomic on the server and a single
round trip, so the lease check and the fill cannot interleave with a writer's invalidation.
The keys they touch and the names in them are cache.py's (the key layout).

A full Redis (maxmemory with noeviction) refuses what would add to it: a lease, a fill, a
warm write's value. It never refuses what retires entries: invalidations, the relay's
catch-up and reset, retire_all (see BOOKKEEPING). Refusals are failures (guard.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from eventapi.cache.base import LookupState
from eventapi.cache.redis.link import READS, Client
from eventapi.cache.resp import RespClient

# The first reply of a script whose key names are out of date: it did nothing.
NAMES_CHANGED = 0
# Attempts of one operation: the names the client knows, then the ones the script returned.
ATTEMPTS = 2
# A change-log script's last resort after those: retire everything ('*', BOOKKEEPING).
ANY_EPOCH = "*"
# The epoch or generation before the client has seen one: never equal to a real one.
UNKNOWN = "?"
LEASE_SUFFIX = ":lease"

# KEYS: epoch, generation, value, lease. ARGV: the epoch and generation the names hold
# (generation '' for an item, whose name has none), token, lease_ms.
# Reply: {0, epoch, generation} the names are out of date, nothing done; {1, value} HIT;
# {2} LEASED; {3} BUSY. A missing epoch or generation is created with a fresh name made
# from the token (a write: Redis refuses it when full, and the read goes to the store).
LEASE = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = 'e' .. ARGV[3]
  redis.call('SET', KEYS[1], epoch)
end
local generation = ''
if ARGV[2] ~= '' then
  generation = redis.call('GET', KEYS[2])
  if not generation then
    generation = 'g' .. ARGV[3]
    redis.call('SET', KEYS[2], generation)
  end
end
if epoch ~= ARGV[1] or generation ~= ARGV[2] then return {0, epoch, generation} end
local value = redis.call('GET', KEYS[3])
if value then return {1, value} end
if redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4]) then return {2} end
return {3}
"""

# KEYS: value, lease. ARGV: token, value, ttl_ms. Its SET is the script's first write, so
# a full Redis refuses the fill (and nothing else happens).
FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# A writer's lease (base.py, Warm writes): taken whoever holds it. KEYS: epoch, lease.
# ARGV: the epoch the name holds, token, lease_ms. Reply: {0, epoch} the name is out of
# date, nothing done; {1} taken.
WRITE_LEASE = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = 'e' .. ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
if epoch ~= ARGV[1] then return {0, epoch} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1}
"""

# The scripts that retire entries and move the change log's bookkeeping share one key
# layout. KEYS: epoch, generation, watermark, delivered (a sorted set of seqs delivered
# above the watermark), then for each item the script may delete its value and its lease,
# named with the epoch ARGV[1]. ARGV[2] is a fresh token: the names they make from it
# have never been used.
#
# They must work when Redis is full (maxmemory, noeviction): that is when an invalidation
# lost would leave an old value served for an hour. Redis refuses a script's memory-growing
# command (SET, ZADD) only while the script has not written anything yet, so each one's
# first write is a removal (DEL, ZREMRANGEBYSCORE), and after it the few small SETs that
# follow are let through. (Tested against a full Redis: tests/cache/test_full_redis.py.)
#
# retire(key, name): replace an epoch or generation by a name never used before. Deleted
# first (the removal above); a missing one stays missing only if the SET is refused, and a
# missing one means "unknown": the next lease makes a fresh name, never an old one.
# advance(applied): move the watermark over every delivered seq that directly follows it;
# the set keeps at most 10000 seqs (a forgotten one is applied again by the relay).
# named(epoch): whether the script may go on with the keys it was given. A missing epoch
# means everything is retired already: a fresh one is made and the script goes on (its
# keys, named under an old epoch, hold nothing anyone can read). ARGV[1] '*' means the
# client has given up naming the epoch (it kept changing under it: eviction, other
# processes retiring): the script retires everything instead, which is always correct,
# and goes on. Otherwise ARGV[1] must be the epoch.
# Replies: {0, epoch} ARGV[1] is not the epoch, nothing done; else {1, epoch, generation}
# as they now are ('' for one that is missing).
BOOKKEEPING = """
local function retire(key, name)
  redis.call('DEL', key)
  redis.call('SET', key, name)
  return name
end
local function advance(applied)
  while redis.call('ZSCORE', KEYS[4], applied + 1) do applied = applied + 1 end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', applied)
  redis.call('SET', KEYS[3], applied)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 10000, -1)
end
local epoch = redis.call('GET', KEYS[1])
local function named()
  if epoch == ARGV[1] then return true end
  if epoch and ARGV[1] ~= '*' then return false end
  epoch = retire(KEYS[1], 'e' .. ARGV[2])
  return true
end
"""

# ARGV: epoch, fresh, number of seqs, seqs..., then for each item: the token of a writer's
# lease ('' for none), the value to store if that lease is still the item's, its ttl_ms.
# KEYS from 5: value and lease of each item, the items with a writer's lease first, so that
# their SET comes before any removal: a full Redis refuses it (pcall), and the item is
# deleted instead. An item whose lease is not that token is deleted.
INVALIDATE = (
    BOOKKEEPING
    + """
if not named() then return {0, epoch} end
local nseqs = tonumber(ARGV[3])
local a = 4 + nseqs
for i = 5, #KEYS, 2 do
  local token = ARGV[a]
  local filled = false
  if token ~= '' and redis.call('GET', KEYS[i + 1]) == token then
    filled = not redis.pcall('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a + 2])['err']
  end
  if filled then
    redis.call('DEL', KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i], KEYS[i + 1])
  end
  a = a + 3
end
local generation = retire(KEYS[2], 'g' .. ARGV[2])
local applied = redis.call('GET', KEYS[3])
if applied and nseqs > 0 then
  applied = tonumber(applied)
  for i = 4, 3 + nseqs do
    local seq = tonumber(ARGV[i])
    if seq > applied then redis.call('ZADD', KEYS[4], seq, seq) end
  end
  advance(applied)
end
return {1, epoch, generation}
"""
)

# ARGV: epoch, fresh, through, then (seq, '*' for everything or '' for an item) pairs; KEYS
# from 5: value and lease of each item change, in the order of the pairs. An item deleted
# after a '*' in the same run is deleted under the epoch just retired: under the new one,
# created by this very script, there is nothing yet to delete. Without a watermark (lost
# since the relay read it) it cannot tell what was applied: it retires everything and sets
# the watermark to ``through``, as RESET does (doing nothing would end the relay's pass as
# if it had applied the changes: the model's catch_up_resets=False).
CATCH_UP = (
    BOOKKEEPING
    + """
local applied = redis.call('GET', KEYS[3])
if not applied then
  epoch = retire(KEYS[1], 'e' .. ARGV[2])
  local generation = retire(KEYS[2], 'g' .. ARGV[2])
  advance(tonumber(ARGV[3]))
  return {1, epoch, generation}
end
if not named() then return {0, epoch} end
applied = tonumber(applied)
local touched = false
local k = 5
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  local everything = ARGV[i + 1] == '*'
  if seq > applied and not redis.call('ZSCORE', KEYS[4], seq) then
    if everything then
      epoch = retire(KEYS[1], 'e' .. ARGV[2] .. '.' .. i)
    else
      redis.call('DEL', KEYS[k], KEYS[k + 1])
    end
    touched = true
  end
  if not everything then k = k + 2 end
end
local generation = redis.call('GET', KEYS[2]) or ''
if touched then generation = retire(KEYS[2], 'g' .. ARGV[2]) end
local through = tonumber(ARGV[3])
if through > applied then applied = through end
advance(applied)
return {1, epoch, generation}
"""
)

# ARGV: head, fresh. Needs no epoch: it retires whichever is current.
RESET = (
    BOOKKEEPING
    + """
epoch = retire(KEYS[1], 'e' .. ARGV[2])
local generation = retire(KEYS[2], 'g' .. ARGV[2])
local applied = tonumber(redis.call('GET', KEYS[3]) or '0')
local head = tonumber(ARGV[1])
if head > applied then applied = head end
advance(applied)
return {1, epoch, generation}
"""
)

# KEYS: epoch. ARGV: fresh. Reply: the new epoch.
RETIRE_ALL = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], 'e' .. ARGV[1])
return 'e' .. ARGV[1]
"""

STATES = {1: LookupState.HIT, 2: LookupState.LEASED, 3: LookupState.BUSY}


class Script:
    """A Lua script, run by its SHA1 and sent in full only when the server does not know
    it (a new or restarted Redis, or another node of a cluster). Routed by its keys; on the
    lean client, down the connection of its ``lane``."""

    def __init__(self, text: str, lane: int = READS) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self.lane = lane

    async def __call__(
        self, client: Client, keys: Sequence[str], args: Sequence[EncodableT]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.text, len(keys), *keys, *args)

    async def on(
        self,
        pipe: RespClient,
        keys: Sequence[str],
        args: Sequence[EncodableT],
        deadline: float | None,
    ) -> Any:
        """The same on the lean client, by ``deadline`` (None: the client's own time-out)."""
        try:
            return await pipe.execute(
                "EVALSHA", self.sha, len(keys), *keys, *args, deadline=deadline
            )
        except NoScriptError:
            return await pipe.execute("EVAL", self.text, len(keys), *keys, *args, deadline=deadline)
