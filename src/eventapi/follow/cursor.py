"""The change cursor: a place in the change log (a seq), as the API hands it out.

Opaque to clients: the seq in hex and a short tag over it, so a cursor that was altered or
made up is a 400 rather than a place nobody handed out. No secret is needed: a forged
cursor can only name a place in the log, which any client reaches by following it anyway.
"""

from __future__ import annotations

import hashlib
import re

from eventapi.errors import InvalidCursor

_KEY = b"eventapi change cursor 1"
_SHAPE = re.compile(r"([0-9a-f]{1,16})\.([0-9a-f]{8})")
# What the OpenAPI document says a change cursor looks like.
PATTERN = f"^{_SHAPE.pattern}$"
EXAMPLE = "2a.dcb6fb5f"


def _tag(body: str) -> str:
    return hashlib.blake2b(body.encode(), digest_size=4, key=_KEY).hexdigest()


def encode(seq: int) -> str:
    body = f"{seq:x}"
    return f"{body}.{_tag(body)}"


def decode(text: str) -> int:
    """The seq of a cursor this API handed out; InvalidCursor (400) for anything else."""
    found = _SHAPE.fullmatch(text)
    if found is None or found[2] != _tag(found[1]):
        raise InvalidCursor(
            "This change cursor was not handed out by this API (altered or made up): use "
            "one from X-Changes-Cursor, a change, or a feed page's next"
        )
    return int(found[1], 16)
