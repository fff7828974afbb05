"""The cached form of a response: status, strong ETag and headers are computed once, when
the entry is built, and stored with the body, so a hit does no parsing or hashing.

Layout: ``{status}\\n{etag}\\n{total}\\n{link}\\n{body}`` (the four header lines never
contain a newline; the body is the exact JSON bytes).

Also here, beside the ETag it tests: IfMatch, a write's precondition (If-Match).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A request's If-Match field (RFC 9110 13.1.1): ``*``, or a list of entity tags.

    ``*`` matches any current representation; a list matches if one of its tags is the
    current ETag by the strong comparison, so a weak tag (``W/"..."``) never matches. A
    field that is neither (empty, or not tags) matches nothing.
    """

    any: bool
    tags: frozenset[str]

    @classmethod
    def parse(cls, value: str) -> IfMatch:
        if value.strip() == "*":
            return cls(True, frozenset())
        return cls(False, frozenset(tag.strip() for tag in value.split(",")))

    def matches(self, etag: str) -> bool:
        """Whether the event whose current (strong) ETag is ``etag`` passes. A weak tag is
        never equal to a strong one: the strong comparison."""
        return self.any or etag in self.tags


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
