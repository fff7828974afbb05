"""How a served cache Entry becomes an HTTP response: shared by the FastAPI routes and the
ASGI fast path, so both send the same status, headers and bytes."""

from __future__ import annotations

from eventapi.events.service import Served

JSON = "application/json"


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a comma-separated list, or "*"."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def served_parts(served: Served, if_none_match: str | None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a read; 304 without a body when the ETag matches."""
    entry = served.entry
    headers = {"ETag": entry.etag, "X-Cache": served.outcome, "Cache-Control": "no-cache"}
    if entry.total:
        headers["X-Total-Count"] = entry.total
        headers["Link"] = entry.link
    if if_none_match and etag_matches(if_none_match, entry.etag):
        return 304, headers, b""
    headers["Content-Type"] = JSON
    return 200, headers, entry.body
