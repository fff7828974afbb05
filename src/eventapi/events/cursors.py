"""List cursors: where the next page of a query starts, as an opaque string.

A cursor is base64url (no padding) of a compact payload and a tag:

    version (1 byte) | query digest (8) | id (12) | key | start | tag (8)

``key`` and ``start`` (events/keyset.py: the sort's value and an expanded page's start)
are each a 2-byte big-endian length and that many bytes of UTF-8, or the length 0xFFFF for
null. The query digest covers every filter, the sort and expand (not limit, offset or the
cursor itself), so a cursor works only for the list it was made for, with any page size.
The tag is BLAKE2b of the rest, keyed with a constant that is no secret: a cursor names a
position in a list the client may ask for anyway (any sort value and id, by filters and
offsets), so a made-up cursor can get no answer the client could not get otherwise. The
tag is there to tell a damaged or edited cursor (truncated in a copy, a character changed)
from a real one, with a clear 400, rather than page on from a wrong place; and decode
checks every value of the payload besides, so no cursor of any content reaches a store
unchecked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
from typing import TYPE_CHECKING

from eventapi.errors import InvalidCursor
from eventapi.events.keyset import Position, instant_text, is_instant_text

if TYPE_CHECKING:
    from eventapi.events.schemas import EventQuery

VERSION = 1
# Not a secret (see above): it only makes the tag this API's own.
_TAG_KEY = b"eventapi list cursor"
_TAG = 8
_DIGEST = 8
_NULL = 0xFFFF
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# The longest cursor: a title of 200 characters (at most 800 bytes of UTF-8), an instant,
# and the fixed parts, in base64 (4 characters for each 3 bytes) are 1,140 characters.
MAX_LENGTH = 1500
# A cursor of the default query (sort by date, no filter), for the API's documentation:
# tests/api/test_cursor_paging.py checks it is one (the event dated 2025-12-01T10:00:00).
EXAMPLE = "Ad0_9PjIgqA1aO0lTjbQIzqgWvvpABcyMDI1LTEyLTAxVDEwOjAwOjAwLjAwMP__fXzZTTifIvo"


def _canonical(query: EventQuery) -> dict[str, object]:
    """What decides which events a query lists, in what order: every field but the paging
    ones, with values that select the same events written one way (categories and
    organizer casefolded, as they match; statuses as a set; window ends as instants)."""
    fields = query.model_dump(mode="json", exclude={"limit", "offset", "cursor"})
    fields["category"] = sorted({c.casefold() for c in query.category})
    fields["status"] = sorted(set(query.status))
    if query.organizer is not None:
        fields["organizer"] = query.organizer.casefold()
    for name in ("date_from", "date_to"):
        value = getattr(query, name)
        fields[name] = None if value is None else instant_text(value)
    return fields


def query_digest(query: EventQuery) -> bytes:
    text = json.dumps(_canonical(query), sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=_DIGEST).digest()


def _tag(body: bytes) -> bytes:
    return hashlib.blake2b(body, key=_TAG_KEY, digest_size=_TAG).digest()


def _field(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">H", _NULL)
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def encode(query: EventQuery, at: Position) -> str:
    """The cursor of the page of ``query`` that follows the item at ``at``."""
    body = (
        bytes([VERSION])
        + query_digest(query)
        + bytes.fromhex(at.id)
        + _field(at.key)
        + _field(at.start)
    )
    return base64.urlsafe_b64encode(body + _tag(body)).rstrip(b"=").decode()


def _malformed() -> InvalidCursor:
    return InvalidCursor(
        "The cursor is not one this API gave (damaged or changed): follow the Link "
        'header\'s rel="next" exactly as sent, or start again without a cursor'
    )


def _read(raw: bytes, at: int) -> tuple[str | None, int]:
    if at + 2 > len(raw):
        raise _malformed()
    (length,) = struct.unpack_from(">H", raw, at)
    at += 2
    if length == _NULL:
        return None, at
    if at + length > len(raw):
        raise _malformed()
    try:
        return raw[at : at + length].decode(), at + length
    except UnicodeDecodeError:
        raise _malformed() from None


def decode(query: EventQuery) -> Position | None:
    """Where the page of ``query`` starts: after this position (None: no cursor, the page
    starts at ``offset``). InvalidCursor (400) for a cursor this API did not make, or made
    for another query."""
    cursor = query.cursor
    if cursor is None:
        return None
    if len(cursor) > MAX_LENGTH or _ALPHABET.fullmatch(cursor) is None:
        raise _malformed()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        raise _malformed() from None
    # One spelling per cursor: a string that decodes to the same bytes but is not what
    # encode writes (other trailing bits) is not one the API gave.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != cursor:
        raise _malformed()
    body, tag = raw[:-_TAG], raw[-_TAG:]
    if len(raw) < 1 + _DIGEST + 12 + 4 + _TAG or not hmac.compare_digest(tag, _tag(body)):
        raise _malformed()
    if body[0] != VERSION:
        raise _malformed()
    if body[1 : 1 + _DIGEST] != query_digest(query):
        raise InvalidCursor(
            "The cursor belongs to another query (other filters, sort or expand): use it "
            "with the query whose Link header gave it, or start again without a cursor"
        )
    at = 1 + _DIGEST
    event_id = body[at : at + 12].hex()
    key, at = _read(body, at + 12)
    start, at = _read(body, at)
    if at != len(body) or not _fits(query, key, start):
        raise _malformed()
    return Position(key, event_id, start)


def _fits(query: EventQuery, key: str | None, start: str | None) -> bool:
    """Whether the values are of the kinds the query's sort and expand give."""
    sort = query.sort.removeprefix("-")
    if sort == "title":
        fits = key is not None
    elif sort == "updated":
        fits = key is None or is_instant_text(key)
    else:
        fits = key is not None and is_instant_text(key)
    if query.expand:
        fits = fits and start is not None and is_instant_text(start)
        return fits and (sort != "date" or key == start)  # date: the start is the key
    return fits and start is None
