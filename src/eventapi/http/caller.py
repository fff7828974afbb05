"""Who sent a request, worked out once per request and kept in its scope: the configured API
key it presented (as its SHA-256 digest), the client its bounds are counted for, and the
scope of its Idempotency-Keys. The key check, the rate limits, the list admission and the
create route all ask the app's one ``Callers``; the first to ask pays for the header scan
and the hash.

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Its digest
is compared with every configured digest with hmac.compare_digest, all of them every time
(at most two presented keys), so neither the timing nor which key matched leaks. A key that
is not configured counts as no key: made-up keys buy a client neither access nor fresh
rate-limit buckets.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.types import Scope

from eventapi.settings import key_digest

BEARER = b"bearer "
# The scope of the Idempotency-Keys sent without a configured API key: one for everybody.
OPEN_SCOPE = "open"
KEEP_DIGEST = 16  # bytes of a key's SHA-256 that name its rate-limit buckets
_SCOPE_KEY = "eventapi.caller"


@dataclass(frozen=True, slots=True)
class Caller:
    digest: bytes | None  # the SHA-256 of the configured key it presented; None: none
    presented: bool  # whether it sent a key at all, configured or not (the 401 says which)
    address: str  # the peer (the proxy's client, once uvicorn applied trusted proxies)

    @property
    def client(self) -> str:
        """Whose bounds a request counts against (rate-limit buckets, the list admission's
        share): ``key:<digest>`` for a configured key, else ``addr:<address>``."""
        if self.digest is not None:
            return "key:" + self.digest[:KEEP_DIGEST].hex()
        return "addr:" + self.address

    @property
    def idempotency_scope(self) -> str:
        """Whose Idempotency-Keys these are: the hex SHA-256 of its configured key, or
        OPEN_SCOPE."""
        return OPEN_SCOPE if self.digest is None else self.digest.hex()


@dataclass(frozen=True, slots=True)
class Callers:
    """Works out a request's caller against the configured keys' digests (none: every
    caller is its address). The app builds one (app.py) for every layer and route."""

    digests: tuple[bytes, ...]

    def of(self, scope: Scope) -> Caller:
        """The request's caller, worked out on the first call and kept in its scope."""
        known: Caller | None = scope.get(_SCOPE_KEY)
        if known is not None:
            return known
        presented: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == BEARER:
                presented.append(value[7:].strip())
            elif name == b"x-api-key":
                presented.append(value.strip())
        matched: bytes | None = None
        if self.digests:
            for key in presented[:2]:
                digest = key_digest(key)
                hit = 0
                for configured in self.digests:
                    hit |= hmac.compare_digest(digest, configured)
                if hit and matched is None:
                    matched = digest
        peer = scope.get("client")
        caller = Caller(matched, bool(presented), str(peer[0]) if peer else "unknown")
        scope[_SCOPE_KEY] = caller
        return caller
