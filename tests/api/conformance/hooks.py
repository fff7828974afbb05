"""Schemathesis hooks for test_schemathesis.py, loaded by the schemathesis process (not by
pytest). Each steers a request away from an answer that depends on something the OpenAPI
document cannot express, so that every check stays on for everything else."""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis
from pydantic import ValidationError

from eventapi.errors import InvalidCursor
from eventapi.events import cursors
from eventapi.events.router import IDEMPOTENCY_KEY
from eventapi.events.schemas import CalendarQuery, EventCreate, EventQuery
from eventapi.follow import cursor

_VALID_KEY = re.compile(IDEMPOTENCY_KEY)
RANGE_ERROR = "date_from must not be after date_to"
WINDOW_ERROR = "expand=true needs a window"
DEPTH_ERROR = "expand=true pages go"  # deeper than schemas.EXPANDED_OFFSET
CURSOR_ERROR = "cursor and offset cannot be combined"
# What a create's body must agree on beyond its fields' schemas (events/timing.py), and
# what an RRULE may say within its shape (events/recurrence.py): the API answers 422
# (tests/api/test_calendar.py, test_recurrence.py, test_recurrence_rules.py).
_CREATES = {"POST /api/events", "PUT /api/events/{event_id}"}
# The lists (as JSON, and as an iCalendar feed) and their queries; the change feed.
_LISTS: dict[str, type[EventQuery]] = {
    "GET /api/events": EventQuery,
    "GET /api/events.ics": CalendarQuery,
}
CHANGES = "GET /api/changes"


@schemathesis.hook
def filter_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> bool:
    """No list query with date_from after date_to, expand=true without both ends of a
    window or deeper than 10,000, or a cursor with an offset: rules across parameters,
    which JSON Schema cannot state. The API answers them with 422 (tests/api/test_list.py,
    test_recurrence.py, test_cursor_paging.py). Nor a schema-valid cursor the API did not
    give for the query's filters and sort: a cursor is opaque, only the API's own decode
    (400 otherwise: test_cursor_paging.py), which no document can describe."""
    label = context.operation.label if context.operation is not None else ""
    if label == CHANGES and query:
        return _handed_out(query.get("after"))
    if label not in _LISTS or not query:
        return True
    try:
        cursors.decode(_LISTS[label].model_validate(query))
    except ValidationError as exc:
        rules = (RANGE_ERROR, WINDOW_ERROR, DEPTH_ERROR, CURSOR_ERROR)
        return all(rule not in error["msg"] for error in exc.errors() for rule in rules)
    except InvalidCursor:
        return False
    return True


@schemathesis.hook
def filter_body(context: schemathesis.HookContext, body: Any) -> bool:
    """No create or replace whose fields disagree (an end before its date, a wall time in a
    daylight-saving gap, exdates without a recurrence, a rule with no occurrence) or whose
    RRULE says what no rule may (a part twice, BYMONTH=13): rules JSON Schema cannot state.
    Schema-invalid bodies still go out, to be refused."""
    if context.operation is None or context.operation.label not in _CREATES:
        return True
    if not isinstance(body, dict):
        return True
    try:
        EventCreate.model_validate(body)
    except ValidationError as exc:
        return not all(_beyond_schema(error) for error in exc.errors())
    return True


def _beyond_schema(error: Any) -> bool:
    """A 422 for what the document cannot say: a value error of the whole body (the fields'
    agreement) or of the recurrence (its rule)."""
    return error["type"] == "value_error" and tuple(error["loc"]) in {(), ("recurrence",)}


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Any, kwargs: dict[str, Any]) -> None:
    """A fresh Idempotency-Key for every POST that sends a valid one. Generated cases share
    keys (the documented example, boundary values), and the same key with another body is
    a 422 by design (tests/api/test_idempotency.py); invalid keys still go out as
    generated, to be refused with 400."""
    headers = case.headers or {}
    for name, value in list(headers.items()):
        valid = isinstance(value, str) and _VALID_KEY.fullmatch(value) is not None
        if name.lower() == "idempotency-key" and valid:
            headers[name] = str(uuid.uuid4())
    _agree(context, case)


def _handed_out(after: object) -> bool:
    """Whether a feed's ``after`` is a change cursor the API hands out (or none): opaque,
    like a list's cursor (400 otherwise: tests/follow/test_feed.py)."""
    if not isinstance(after, str):
        return True
    try:
        cursor.decode(after)
    except InvalidCursor:
        return False
    return True


def _agree(context: schemathesis.HookContext, case: Any) -> None:
    """The coverage phase does not run the filters above: its schema-valid cases that break
    a rule beyond the schema are brought within it here instead (the calendar fields that
    disagree are left out; expand without a window is not asked for). Schema-invalid cases
    go out as generated."""
    label = context.operation.label if context.operation is not None else ""
    query = case.query
    if label in _LISTS and isinstance(query, dict) and not filter_query(context, query):
        query.pop("cursor", None)
        if not filter_query(context, query):
            query.pop("expand", None)
    if label == CHANGES and isinstance(query, dict) and not filter_query(context, query):
        query.pop("after", None)
    body = case.body
    if label in _CREATES and isinstance(body, dict) and not filter_body(context, body):
        for name in ("recurrence", "exdates", "end", "timezone"):
            body.pop(name, None)
