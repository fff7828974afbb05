"""The cached form of a response: status, strong ETag and headers are computed once, when
the entry is built, and kept with the body, so a hit does no parsing or hashing.

The in-process cache keeps Entry objects as they are. Redis keeps their bytes (ENTRY_CODEC,
which the cache factory hands to RedisCache): ``{status}\\n{etag}\\n{total}\\n{link}\\n{body}``
(the four header lines never contain a newline; the body is the exact JSON bytes). Its
format version is in every key's name (base.SCHEMA_VERSION): a process never reads an
entry another format wrote.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# An Entry's object and its small strings, beyond the body's and link's bytes (tracemalloc,
# 20,000 item entries: 164 bytes each).
ENTRY_OBJECT = 170


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    etag: str
    body: bytes
    total: str = ""
    link: str = ""

    @classmethod
    def build(cls, status: int, body: bytes, total: str = "", link: str = "") -> Entry:
        return cls(status, strong_etag(body) if status == 200 else "", body, total, link)

    def encode(self) -> bytes:
        head = f"{self.status}\n{self.etag}\n{self.total}\n{self.link}\n".encode()
        return head + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        status, etag, total, link, body = raw.split(b"\n", 4)
        return cls(int(status), etag.decode(), body, total.decode(), link.decode())

    def cost(self) -> int:
        """What it costs the in-process cache's byte budget besides memory.ENTRY_OVERHEAD:
        its bytes, and the object and strings that hold them."""
        return len(self.body) + len(self.link) + ENTRY_OBJECT


class EntryCodec:
    """An Entry as the bytes Redis keeps (redis.RedisCache's codec)."""

    @staticmethod
    def encode(entry: Entry) -> bytes:
        return entry.encode()

    @staticmethod
    def decode(raw: bytes) -> Entry:
        return Entry.decode(raw)


ENTRY_CODEC = EntryCodec()
