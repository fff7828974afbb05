"""What a request may send: the media types read as JSON, and the dates read as dates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventapi.events import dates
from eventapi.http.json_body import is_json


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ('APPLICATION/JSON ; CHARSET="utf-8"', True),
        ("application/json; boundary=x", True),
        ("application/merge-patch+json", True),
        ("application/problem+json", True),
        (None, False),
        ("", False),
        ("application/json; charset=latin-1", False),
        ("application/jsonx", False),
        ("application/xml", False),
        ("text/json", False),
        ("text/plain", False),
        ("multipart/form-data; boundary=x", False),
        ("application/x-www-form-urlencoded", False),
        ("application/json, text/plain", False),
    ],
)
def test_json_media_types(content_type: str | None, accepted: bool) -> None:
    assert is_json(content_type) is accepted


@pytest.mark.parametrize(
    "value", ["1700000000", "0.5", "-1", "2025", "20251201", "", " 2025-01-01"]
)
def test_strings_that_are_not_iso_8601_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        dates.require_text(value)


@pytest.mark.parametrize("value", ["2025-12-01T10:00:00", "2025-12-01", "0001-01-01T00:00:00Z"])
def test_iso_8601_text_passes_on(value: str) -> None:
    assert dates.require_text(value) == value


@pytest.mark.parametrize(
    "value",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(minutes=1))),
        datetime(1, 1, 1, 0, 0, 0, tzinfo=timezone(timedelta(minutes=1))),
    ],
)
def test_an_instant_outside_years_1_to_9999_is_a_value_error(value: datetime) -> None:
    with pytest.raises(ValueError, match="out of range"):
        dates.normalise(value)
