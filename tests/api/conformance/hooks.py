"""Schemathesis hooks for test_schemathesis.py, loaded by the schemathesis process (not by
pytest). Each steers a request away from an answer that depends on something the OpenAPI
document cannot express, so that every check stays on for everything else."""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis
from pydantic import ValidationError

from eventapi.events.router import IDEMPOTENCY_KEY
from eventapi.events.schemas import EventQuery

_VALID_KEY = re.compile(IDEMPOTENCY_KEY)
RANGE_ERROR = "date_from must not be after date_to"


@schemathesis.hook
def filter_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> bool:
    """No list query with date_from after date_to: a rule across two parameters, which JSON
    Schema cannot state. The API answers it with 422 (tests/api/test_list.py)."""
    if context.operation is None or context.operation.label != "GET /api/events" or not query:
        return True
    try:
        EventQuery.model_validate(query)
    except ValidationError as exc:
        return all(RANGE_ERROR not in error["msg"] for error in exc.errors())
    return True


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
