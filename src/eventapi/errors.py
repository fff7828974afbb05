"""Domain errors: everything below the HTTP layer raises on purpose. No web imports here;
http/problems.py maps each one to an RFC 9457 problem+json response.

    EventApiError
      EventNotFound        404  the id is well-formed but no such event exists
      StoreUnavailable     503  the database did not answer in time or refused
      PayloadTooLarge      413  request body over the configured limit
      MalformedBody        400  the request body is not one JSON document
      UnsupportedMediaType 415  the request body is not sent as JSON
      PreconditionFailed   412  If-Match matches no current representation of the event
                                (changed since that ETag was read, or gone); carries the
                                current ETag, if there is an event
      PreconditionRequired 428  EVENTAPI_REQUIRE_IF_MATCH is on and a PUT, PATCH or DELETE
                                came without If-Match
      InvalidIdempotencyKey  400  Idempotency-Key is not 1-255 printable ASCII characters
      InvalidCursor        400  a cursor is not one the API gave (damaged or made up), or
                                a list's cursor was given for other filters or sort
      IdempotencyKeyInFlight 409  a POST with this Idempotency-Key is still being processed
      IdempotencyKeyReused   422  this Idempotency-Key came before with another request body
      InvalidEvent         422  a PATCH would leave the event inconsistent (an end before
                                its date, say): checked on the event as it would become
      TooManyListQueries   429  this client already has as many uncached list queries
                                running as it may (events/admission.py)
      ListQueriesBusy      503  this process runs as many uncached list queries as it admits
"""

from __future__ import annotations


class EventApiError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # What the HTTP answer carries besides the standard members: response headers,
        # and extra members of the problem document (plain data: no web types here).
        self.headers: dict[str, str] = {}
        self.members: dict[str, object] = {}


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


class PreconditionFailed(EventApiError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"

    def __init__(self, event_id: str, etag: str | None) -> None:
        if etag is None:
            detail = f"No event with id {event_id}: If-Match needs a current one"
        else:
            detail = (
                f"Event {event_id} does not match If-Match: it has changed since that ETag "
                f"was read; its current ETag is {etag}"
            )
        super().__init__(detail)
        self.event_id = event_id
        self.etag = etag  # the event's current strong ETag; None when there is no event
        if etag is not None:  # so a client can re-read and retry knowingly
            self.headers["ETag"] = etag
            self.members["etag"] = etag


class PreconditionRequired(EventApiError):
    status, slug, title = 428, "precondition-required", "Precondition required"

    def __init__(
        self,
        detail: str = (
            "This server requires If-Match on PUT, PATCH and DELETE: send the ETag of a GET "
            "(or *) so that a write cannot overwrite a change you have not seen"
        ),
    ) -> None:
        super().__init__(detail)


class InvalidIdempotencyKey(EventApiError):
    status, slug, title = 400, "invalid-idempotency-key", "Invalid Idempotency-Key"

    def __init__(
        self, detail: str = "Idempotency-Key must be 1 to 255 printable ASCII characters"
    ) -> None:
        super().__init__(detail)


class InvalidCursor(EventApiError):
    status, slug, title = 400, "invalid-cursor", "Invalid cursor"


class IdempotencyKeyInFlight(EventApiError):
    status, slug, title = 409, "idempotency-key-in-flight", "Request in progress"

    def __init__(
        self,
        detail: str = (
            "A request with this Idempotency-Key is still being processed; retry it shortly "
            "to get its response"
        ),
    ) -> None:
        super().__init__(detail)


class IdempotencyKeyReused(EventApiError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key reused"

    def __init__(
        self,
        detail: str = (
            "This Idempotency-Key was used with another request body; use a new key for a "
            "new request"
        ),
    ) -> None:
        super().__init__(detail)


class InvalidEvent(EventApiError):
    status, slug, title = 422, "validation-error", "Validation failed"

    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__("The request is not valid; see 'errors' for each field")
        self.members["errors"] = errors


class TooManyListQueries(EventApiError):
    status, slug, title = 429, "too-many-list-queries", "Too many list queries"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} list queries running that the cache could not answer; "
            "wait for them, then retry"
        )
        self.headers["Retry-After"] = "1"


class ListQueriesBusy(EventApiError):
    status, slug, title = 503, "list-queries-busy", "List queries busy"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server is running {limit} list queries the cache could not answer; retry shortly"
        )
        self.headers["Retry-After"] = "1"


class ChangesGone(EventApiError):
    status, slug, title = 410, "changes-gone", "Changes no longer kept"

    def __init__(self, why: str = "the change log no longer keeps the changes after it") -> None:
        super().__init__(
            f"This change cursor is too old: {why}. Sync again: read the events from a list "
            "(GET /api/events) and follow the changes from its X-Changes-Cursor"
        )


class TooManyStreams(EventApiError):
    status, slug, title = 429, "too-many-streams", "Too many open streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} change streams open; close one (one stream carries "
            "every change), then retry"
        )
        self.headers["Retry-After"] = "5"


class StreamsBusy(EventApiError):
    status, slug, title = 503, "streams-busy", "Change streams busy"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server process has {limit} change streams open, its most; retry shortly "
            "(or follow GET /api/changes)"
        )
        self.headers["Retry-After"] = "5"
