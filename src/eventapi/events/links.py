"""RFC 8288 Link header for list pages (relative URIs, so they are host-independent)."""

from __future__ import annotations

from urllib.parse import urlencode

from eventapi.events.schemas import EventQuery

# Where the events live. Links are built from this, not from a request, so a cached page is
# the same for every process and every client.
EVENTS_PATH = "/api/events"


def _href(query: EventQuery, offset: int) -> str:
    params = query.model_dump(mode="json", exclude_defaults=True, exclude={"limit", "offset"})
    if query.expand:
        params["expand"] = "true"  # as a client writes it (urlencode would say True)
    params.update(limit=query.limit, offset=offset)
    return f"<{EVENTS_PATH}?{urlencode(params, doseq=True)}>"


def page_links(query: EventQuery, total: int) -> str:
    limit, offset = query.limit, query.offset
    last = max(0, (total - 1) // limit * limit) if total else 0
    links = [(0, "first")]
    if offset > 0:
        links.append((max(0, min(offset - limit, last)), "prev"))
    if offset + limit < total:
        links.append((offset + limit, "next"))
    links.append((last, "last"))
    return ", ".join(f'{_href(query, off)}; rel="{rel}"' for off, rel in links)
