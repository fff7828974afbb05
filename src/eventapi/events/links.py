"""RFC 8288 Link header for list pages (relative URIs, so they are host-independent).

``first`` and ``last`` are offsets; ``prev`` too, on an offset page only; ``next`` is a
cursor (events/cursors.py) after the page's last item, whenever an item follows it: the
walk along ``next`` then sees every event that exists throughout it exactly once, whatever
is created or deleted meanwhile (an offset would skip or repeat one for each create or
delete before it)."""

from __future__ import annotations

from urllib.parse import urlencode

from eventapi.events import cursors
from eventapi.events.schemas import EventPage, EventQuery

# Where the events live. Links are built from this, not from a request, so a cached page is
# the same for every process and every client.
EVENTS_PATH = "/api/events"
# The same list as an iCalendar calendar (events/ical.py).
CALENDAR_PATH = EVENTS_PATH + ".ics"


def _href(query: EventQuery, path: str, **paging: int | str) -> str:
    params = query.model_dump(
        mode="json", exclude_defaults=True, exclude={"limit", "offset", "cursor"}
    )
    if query.expand:
        params["expand"] = "true"  # as a client writes it (urlencode would say True)
    params.update(limit=query.limit, **paging)
    return f"<{path}?{urlencode(params, doseq=True)}>"


def page_links(query: EventQuery, page: EventPage, path: str = EVENTS_PATH) -> str:
    """The Link header of ``page`` of the list at ``path`` (the events, or their calendar)."""
    limit, offset, total = query.limit, query.offset, page.total
    last = max(0, (total - 1) // limit * limit) if total else 0
    links = [(_href(query, path, offset=0), "first")]
    if query.cursor is None and offset > 0:
        links.append((_href(query, path, offset=max(0, min(offset - limit, last))), "prev"))
    more = page.more if page.more is not None else offset + limit < total
    if more and page.last is not None:
        links.append((_href(query, path, cursor=cursors.encode(query, page.last)), "next"))
    links.append((_href(query, path, offset=last), "last"))
    return ", ".join(f'{href}; rel="{rel}"' for href, rel in links)
