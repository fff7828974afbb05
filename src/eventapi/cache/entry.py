"""The cached form of a response: status, strong ETag and headers are computed once, when
the entry is built, and kept with the body, so a hit does no parsing or hashing.

The in-process cache keeps Entry objects as they are. Redis keeps their bytes (ENTRY_CODEC,
which the cache factory hands to RedisCache): ``+{status}\\n{etag}\\n{total}\\n{last}\\n{body}``
(the four header lines never contain a newline; the body is the exact JSON bytes; ``last``
is a page's Link, or an event's Last-Modified).

Every entry carries its format (FORMAT), and the key names do not (base.SCHEMA_VERSION
stays): during a rolling upgrade the processes of both releases share every key, so an
invalidation by either reaches the entries of both. A process never serves an entry of
another format: this release reads one without the ``+`` as a miss (and does not fill over
it); the release before reads ``+200`` as 200 (its int() allows the sign) and this
format's layout as its own, serving the newer body rather than failing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# An Entry's object and its small strings, beyond the body's and link's bytes (tracemalloc,
# 20,000 item entries: 164 bytes each).
ENTRY_OBJECT = 170


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


# The mark of this format at the start of an entry's bytes (the format of the releases
# before it had none).
FORMAT = b"+"


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    etag: str
    body: bytes
    total: str = ""
    link: str = ""
    modified: str = ""  # an event's Last-Modified (an HTTP date), when it has one

    @classmethod
    def build(
        cls, status: int, body: bytes, total: str = "", link: str = "", modified: str = ""
    ) -> Entry:
        return cls(status, strong_etag(body) if status == 200 else "", body, total, link, modified)

    def encode(self) -> bytes:
        last = self.link if self.total else self.modified
        head = f"+{self.status}\n{self.etag}\n{self.total}\n{last}\n".encode()
        return head + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        """The entry, or None for bytes of another format."""
        if not raw.startswith(FORMAT):
            return None
        status, etag, total, last, body = raw[1:].split(b"\n", 4)
        if total:
            return cls(int(status), etag.decode(), body, total.decode(), last.decode())
        return cls(int(status), etag.decode(), body, modified=last.decode())

    def cost(self) -> int:
        """What it costs the in-process cache's byte budget besides memory.ENTRY_OVERHEAD:
        its bytes, and the object and strings that hold them."""
        return len(self.body) + len(self.link) + len(self.modified) + ENTRY_OBJECT


class EntryCodec:
    """An Entry as the bytes Redis keeps (redis.RedisCache's codec)."""

    @staticmethod
    def encode(entry: Entry) -> bytes:
        return entry.encode()

    @staticmethod
    def decode(raw: bytes) -> Entry | None:
        return Entry.decode(raw)


ENTRY_CODEC = EntryCodec()
