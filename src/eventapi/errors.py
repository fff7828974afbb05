"""Domain errors: everything below the HTTP layer raises on purpose. No web imports here;
http/problems.py maps each one to an RFC 9457 problem+json response.

    EventApiError
      EventNotFound        404  the id is well-formed but no such event exists
      StoreUnavailable     503  the database did not answer in time or refused
      PayloadTooLarge      413  request body over the configured limit
      MalformedBody        400  the request body is not one JSON document
      UnsupportedMediaType 415  the request body is not sent as JSON
"""

from __future__ import annotations


class EventApiError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class EventNotFound(EventApiError):
    status, slug, title = 404, "event-not-found", "Event not found"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"No event with id {event_id}")
        self.event_id = event_id


class StoreUnavailable(EventApiError):
    status, slug, title = 503, "store-unavailable", "Database unavailable"

    def __init__(self, detail: str = "The database did not answer; try again shortly") -> None:
        super().__init__(detail)


class PayloadTooLarge(EventApiError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class MalformedBody(EventApiError):
    status, slug, title = 400, "malformed-body", "Malformed request body"


class UnsupportedMediaType(EventApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"
