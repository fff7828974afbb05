from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from eventapi.events import dates


def test_naive_is_kept_naive_and_truncated_to_milliseconds() -> None:
    value = dates.normalise(datetime(2025, 1, 2, 3, 4, 5, 678_901))
    assert value == datetime(2025, 1, 2, 3, 4, 5, 678_000)
    assert value.tzinfo is None


def test_aware_is_converted_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    value = dates.normalise(datetime(2025, 1, 2, 3, 0, tzinfo=plus2))
    assert value == datetime(2025, 1, 2, 1, 0, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2025, 11, 15, 9, 0), "2025-11-15T09:00:00"),
        (datetime(2025, 11, 15, 9, 0, 0, 5000), "2025-11-15T09:00:00.005"),
        (datetime(2025, 11, 15, 9, 0, tzinfo=UTC), "2025-11-15T09:00:00Z"),
    ],
)
def test_format_iso(value: datetime, text: str) -> None:
    assert dates.format_iso(value) == text


def test_round_trip_through_instant() -> None:
    naive = datetime(2025, 5, 1, 12, 30)
    assert dates.from_instant(dates.instant(naive), naive=True) == naive
    aware = datetime(2025, 5, 1, 12, 30, tzinfo=UTC)
    assert dates.from_instant(dates.instant(aware), naive=False) == aware


def test_numbers_are_not_dates() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        dates.require_text(1_700_000_000)
