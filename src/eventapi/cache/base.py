"""The Cache port: bytes in, bytes out, with leases so a stale value can never be filled.

Keys are resolved by the backend as ``{prefix}:{epoch}:{name}`` (items) or
``{prefix}:{epoch}:{name}:g{generation}`` (list pages). Bumping the epoch retires every
entry at once; bumping the generation retires every list page at once. Neither needs
KEYS or SCAN.

The lease protocol (after Facebook's memcache leases):
- ``lease(key)`` returns the value (HIT), or grants a lease token to exactly one caller
  (LEASED), or reports that someone else holds the lease (BUSY: wait and look again).
- ``fill(resolved, token, value)`` stores the value only if that lease is still current.
- ``invalidate`` deletes the value AND its lease, so a reader that loaded the old value
  before a write can no longer fill it after the write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

CacheBackend = Literal["redis", "memory"]

# Bump when the cached byte layout or the event schema changes: old entries are ignored.
SCHEMA_VERSION = "v1"


class CacheUnavailable(Exception):
    """The cache did not answer within its budget, or is switched off by the breaker."""


class LookupState(Enum):
    HIT = "hit"
    LEASED = "leased"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class CacheKey:
    name: str  # e.g. "item:68ed254e36d0233aa05afbe9" or "list:<sha256>"
    is_list: bool = False


@dataclass(frozen=True, slots=True)
class Lookup:
    state: LookupState
    resolved: str  # the concrete key, to pass back to fill()
    value: bytes | None = None
    token: str | None = None


class Cache(Protocol):
    backend: CacheBackend

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup: ...

    async def fill(self, resolved: str, token: str, value: bytes, ttl_ms: int) -> bool: ...

    async def invalidate(self, item_names: Sequence[str]) -> None:
        """Delete these items (and their leases) and retire every list page."""
        ...

    async def retire_all(self) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


ITEM_PREFIX = "item:"
LIST_PREFIX = "list:"


def item_key(event_id: str) -> CacheKey:
    return CacheKey(ITEM_PREFIX + event_id)


def list_key(query_digest: str) -> CacheKey:
    return CacheKey(LIST_PREFIX + query_digest, is_list=True)
