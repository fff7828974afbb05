"""Request and response shapes. Field names and order follow the original API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
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


# Whitespace as every party counts it: JSON Schema's \s (ECMA-262), Python's str.isspace,
# and the byte-order mark. One set, so that a value the OpenAPI document calls valid is one
# the API accepts, and the other way round (tests/api/test_schemas.py holds them equal).
WHITESPACE = (
    "\t\n\v\f\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# Some character outside WHITESPACE. \uXXXX escapes read the same in ECMA-262 (the
# document's pattern) and in Python's re (the check below).
NOT_BLANK = (
    r"[^\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a"
    r"\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
_NOT_BLANK = re.compile(NOT_BLANK)


def _not_blank(value: str) -> str:
    if _NOT_BLANK.search(value) is None:
        raise ValueError("must not be empty or only whitespace")
    return value.strip(WHITESPACE)


def _documented(max_length: int) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK}
    )


# Text fields: 1 to N characters as sent (the document's minLength and maxLength), not only
# whitespace; stored without the whitespace around them.
NotBlank = AfterValidator(_not_blank)
Title = Annotated[str, StringConstraints(min_length=1, max_length=200), NotBlank, _documented(200)]
Description = Annotated[
    str, StringConstraints(min_length=1, max_length=5000), NotBlank, _documented(5000)
]
Place = Annotated[str, StringConstraints(min_length=1, max_length=200), NotBlank, _documented(200)]
Category = Annotated[
    str, StringConstraints(min_length=1, max_length=100), NotBlank, _documented(100)
]
Organizer = Annotated[
    str, StringConstraints(min_length=1, max_length=200), NotBlank, _documented(200)
]

# An event id as a client may send it: 24 hex digits, either case (stored lower-case).
EVENT_ID = r"[0-9a-fA-F]{24}"

EVENT_FIELDS = ("title", "description", "date", "location", "category", "organizer")
REQUIRED_FIELDS = ("title", "date")

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


def _required_are_not_nullable(schema: dict[str, Any]) -> None:
    """In the document, title and date of a PATCH are strings, not "string or null": absent
    means unchanged, and null is refused (they cannot be cleared)."""
    for name in REQUIRED_FIELDS:
        field = schema["properties"][name]
        [branch] = [option for option in field.pop("anyOf") if option.get("type") != "null"]
        del field["default"]
        field.update(branch)
    schema["examples"] = [{"location": "Boston, MA"}]


class EventUpdate(_Input):
    """Body of PATCH: absent fields stay as they are, null clears an optional field."""

    model_config = ConfigDict(json_schema_extra=_required_are_not_nullable)

    title: Title | None = None
    description: Description | None = None
    date: EventDate | None = None
    location: Place | None = None
    category: Category | None = None
    organizer: Organizer | None = None

    @field_validator(*REQUIRED_FIELDS)
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


class EventFields(TypedDict):
    """An EventRead as ``model_dump()`` gives it: for bulk paths that write events by the
    million and cannot afford a model each (building one costs about 10 us, 10 s a million)."""

    id: str
    title: str
    description: str | None
    date: datetime
    location: str | None
    category: str | None
    organizer: str | None


def fields_of(event: EventRead) -> EventFields:
    return cast(EventFields, event.model_dump())


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
