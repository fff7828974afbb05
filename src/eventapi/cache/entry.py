"""The cached form of a response: status, strong ETag and headers are computed once, when
the entry is built, and kept with the body, so a hit does no parsing or hashing.

The in-process cache keeps Entry objects as they are. Redis keeps their bytes (ENTRY_CODEC,
which the cache factory hands to RedisCache):
``*{status}\\n{etag}\\n{total}\\n{last}\\n{cursor}\\n{body}`` (the five header lines never
contain a newline; the body is the exact JSON bytes; ``last`` is a page's Link, or an
event's Last-Modified; ``cursor`` the change cursor the answer is consistent with,
follow/watch.py).

Every entry carries its format (FORMAT), and the key names do not (base.SCHEMA_VERSION
stays): during a rolling upgrade the processes of both releases share every key, so an
invalidation by either reaches the entries of both. A process never serves an entry of
another format: it reads one as a miss, reads the store, and removes the entry
(readthrough.py). The release before this one marked its entries ``+`` (the one before it,
not at all) and does the same with this release's ``*``: during a rolling upgrade each
release serves only its own entries.
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
FORMAT = b"*"


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    etag: str
    body: bytes
    total: str = ""
    link: str = ""
    modified: str = ""  # an event's Last-Modified (an HTTP date), when it has one
    cursor: str = ""  # the change cursor (X-Changes-Cursor) the answer is consistent with

    @classmethod
    def build(
        cls,
        status: int,
        body: bytes,
        total: str = "",
        link: str = "",
        modified: str = "",
        cursor: str = "",
    ) -> Entry:
        etag = strong_etag(body) if status == 200 else ""
        return cls(status, etag, body, total, link, modified, cursor)

    def encode(self) -> bytes:
        last = self.link if self.total else self.modified
        head = f"*{self.status}\n{self.etag}\n{self.total}\n{last}\n{self.cursor}\n".encode()
        return head + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        """The entry, or None for bytes of another format."""
        if not raw.startswith(FORMAT):
            return None
        status, etag, total, last, cursor, body = raw[1:].split(b"\n", 5)
        if total:
            return cls(
                int(status), etag.decode(), body, total.decode(), last.decode(), "", cursor.decode()
            )
        return cls(int(status), etag.decode(), body, modified=last.decode(), cursor=cursor.decode())

    def cost(self) -> int:
        """What it costs the in-process cache's byte budget besides memory.ENTRY_OVERHEAD:
        its bytes, and the object and strings that hold them."""
        return (
            len(self.body) + len(self.link) + len(self.modified) + len(self.cursor) + ENTRY_OBJECT
        )


class EntryCodec:
    """An Entry as the bytes Redis keeps (redis.RedisCache's codec)."""

    @staticmethod
    def encode(entry: Entry) -> bytes:
        return entry.encode()

    @staticmethod
    def decode(raw: bytes) -> Entry | None:
        return Entry.decode(raw)


ENTRY_CODEC = EntryCodec()
