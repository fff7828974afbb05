"""Request and response shapes. Field names and order follow the original API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

from eventapi.events import dates

EventDate = Annotated[
    datetime,
    BeforeValidator(dates.require_text),
    AfterValidator(dates.normalise),
    PlainSerializer(dates.format_iso, return_type=str, when_used="json"),
]


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Title = Annotated[str, _text(200)]
Description = Annotated[str, _text(5000)]
Place = Annotated[str, _text(200)]
Category = Annotated[str, _text(100)]
Organizer = Annotated[str, _text(200)]

EVENT_FIELDS = ("title", "description", "date", "location", "category", "organizer")

_EXAMPLE: dict[str, Any] = {
    "title": "New Conference",
    "description": "Amazing event",
    "date": "2025-12-01T10:00:00",
    "location": "New York, NY",
    "category": "Technology",
    "organizer": "Event Corp",
}


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})


class EventCreate(_Input):
    """Body of POST, and of PUT (a full replace: absent optional fields are cleared)."""

    title: Title
    description: Description | None = None
    date: EventDate
    location: Place | None = None
    category: Category | None = None
    organizer: Organizer | None = None


class EventUpdate(_Input):
    """Body of PATCH: absent fields stay as they are, null clears an optional field."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"location": "Boston, MA"}]})

    title: Title | None = None
    description: Description | None = None
    date: EventDate | None = None
    location: Place | None = None
    category: Category | None = None
    organizer: Organizer | None = None

    @field_validator("title", "date")
    @classmethod
    def _required_stay_set(cls, value: object) -> object:
        # Runs only for fields the client sent, so absent still means "unchanged".
        if value is None:
            raise ValueError("cannot be null: this field is required")
        return value

    def changes(self) -> dict[str, object]:
        return self.model_dump(include=self.model_fields_set)


class EventRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "68ed254e36d0233aa05afbe9", **_EXAMPLE}]}
    )

    id: str = Field(pattern=r"^[0-9a-f]{24}$")
    title: str
    description: str | None = None
    date: EventDate
    location: str | None = None
    category: str | None = None
    organizer: str | None = None


class DeleteResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"message": "Event 68ed254e36d0233aa05afbe9 deleted successfully"}]
        }
    )

    message: str


SortKey = Literal["date", "-date", "title", "-title"]


class EventQuery(BaseModel):
    """Validated list query; every field has its default filled in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000)
    category: Category | None = None
    date_from: EventDate | None = None
    date_to: EventDate | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    sort: SortKey = "date"

    @model_validator(mode="after")
    def _range_in_order(self) -> EventQuery:
        start, end = self.date_from, self.date_to
        if start and end and dates.instant(start) > dates.instant(end):
            raise ValueError("date_from must not be after date_to")
        return self


class EventPage(BaseModel):
    items: list[EventRead]
    total: int
