"""Request and response shapes. Field names and order follow the original API."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    ValidationError,
    WithJsonSchema,
    computed_field,
    field_validator,
    model_validator,
)

from eventapi.errors import InvalidEvent
from eventapi.events import cursors, dates, recurrence, timing, zones
from eventapi.events.keyset import Position

EventDate = Annotated[
    datetime,
    BeforeValidator(dates.require_text),
    AfterValidator(dates.normalise),
    PlainSerializer(dates.format_iso, return_type=str, when_used="json"),
]

# An instant the server computes or sets (date_utc, created_at, ...): always UTC with
# milliseconds and Z, whatever its value.
UtcInstant = Annotated[
    datetime,
    AfterValidator(dates.normalise),
    PlainSerializer(dates.format_utc, return_type=str, when_used="json"),
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

# The original API's fields, in its order; then the calendar fields beside them.
ORIGINAL_FIELDS = ("title", "description", "date", "location", "category", "organizer")
CALENDAR_FIELDS = ("end", "timezone", "status", "recurrence", "exdates")
EVENT_FIELDS = (*ORIGINAL_FIELDS, *CALENDAR_FIELDS)
# Set by the server only: a client sending them gets 422 like any unknown field.
STAMP_FIELDS = ("created_at", "updated_at")
REQUIRED_FIELDS = ("title", "date")
# The calendar fields' defaults: a body or file row that leaves them so says what it would
# have said before they existed (its fingerprint and derived id are unchanged).
FIELD_DEFAULTS: dict[str, object] = {**dict.fromkeys(CALENDAR_FIELDS), "status": "scheduled"}
# Fields that cannot be null: required, or with a default a PATCH cannot clear.
NOT_NULL_FIELDS = (*REQUIRED_FIELDS, "status")

Status = Literal["scheduled", "postponed", "rescheduled", "cancelled"]

TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(zones.check_name),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An IANA time zone name, as the tz database spells it",
            "enum": sorted(zones.names()),
            "examples": ["America/Chicago"],
        }
    ),
]
# An RRULE value's shape (NAME=VALUE parts, an optional RRULE: prefix); what each part may
# say is recurrence.py's to check.
RRULE_SHAPE = "^([Rr][Rr][Uu][Ll][Ee]:)?[A-Za-z]+=[^;]+(;[A-Za-z]+=[^;]+)*$"


def _canonical_rule(text: str) -> str:
    try:
        return recurrence.parse_rule(text).text()
    except recurrence.RuleError as exc:
        raise ValueError(str(exc)) from None


Recurrence = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000),
    AfterValidator(_canonical_rule),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 1000,
            "pattern": RRULE_SHAPE,
            "description": "An RFC 5545 RRULE value (FREQ=HOURLY at the finest)",
            "examples": ["FREQ=WEEKLY;BYDAY=TU;UNTIL=20270601T000000Z"],
        }
    ),
]
ExDates = Annotated[list[EventDate], Field(max_length=recurrence.MAX_OCCURRENCES)]

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
    end: EventDate | None = None
    timezone: TimeZone | None = None
    status: Status = "scheduled"
    recurrence: Recurrence | None = None
    exdates: ExDates | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EventCreate:
        timing.check(self)
        return self


def _required_are_not_nullable(schema: dict[str, Any]) -> None:
    """In the document, title, date and status of a PATCH are not nullable: absent means
    unchanged, and null is refused (they cannot be cleared)."""
    for name in NOT_NULL_FIELDS:
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
    end: EventDate | None = None
    timezone: TimeZone | None = None
    status: Status | None = None
    recurrence: Recurrence | None = None
    exdates: ExDates | None = None

    @field_validator(*NOT_NULL_FIELDS)
    @classmethod
    def _required_stay_set(cls, value: object) -> object:
        # Runs only for fields the client sent, so absent still means "unchanged".
        if value is None:
            raise ValueError("cannot be null: this field always has a value")
        return value

    def changes(self) -> dict[str, object]:
        return self.model_dump(include=self.model_fields_set)


def merged(current: EventRead, changes: Mapping[str, Any]) -> EventCreate:
    """``current`` with ``changes`` applied, checked as a whole (InvalidEvent if the fields
    no longer agree: a PATCH of ``end`` alone before the event's date, say)."""
    try:
        return EventCreate.model_validate(
            {**current.model_dump(include=set(EVENT_FIELDS)), **changes}
        )
    except ValidationError as exc:
        errors: list[dict[str, object]] = [
            {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        raise InvalidEvent(errors) from None


class EventRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "68ed254e36d0233aa05afbe9",
                    **_EXAMPLE,
                    "end": None,
                    "timezone": None,
                    "status": "scheduled",
                    "recurrence": None,
                    "exdates": None,
                    "created_at": "2025-10-13T16:05:02.512Z",
                    "updated_at": "2025-10-13T16:05:02.512Z",
                    "date_utc": None,
                    "end_utc": None,
                }
            ]
        }
    )

    id: str = Field(pattern=r"^[0-9a-f]{24}$")
    title: str
    description: str | None = None
    date: EventDate
    location: str | None = None
    category: str | None = None
    organizer: str | None = None
    end: EventDate | None = None
    timezone: str | None = None
    status: Status = "scheduled"
    recurrence: str | None = None
    exdates: list[EventDate] | None = None
    # Set by the store: when the event was created and last written (null: before the
    # release that kept them, never invented).
    created_at: UtcInstant | None = None
    updated_at: UtcInstant | None = None

    @computed_field(description="The start as a UTC instant; null for a floating time")  # type: ignore[prop-decorator]
    @property
    def date_utc(self) -> UtcInstant | None:
        return timing.known_instant(self.date, self.timezone)

    @computed_field(description="The end as a UTC instant; null without an end, or floating")  # type: ignore[prop-decorator]
    @property
    def end_utc(self) -> UtcInstant | None:
        return None if self.end is None else timing.known_instant(self.end, self.timezone)


class EventFields(TypedDict):
    """An EventRead's stored fields as ``model_dump()`` gives them: for bulk paths that write
    events by the million and cannot afford a model each (building one costs about 10 us,
    10 s a million)."""

    id: str
    title: str
    description: str | None
    date: datetime
    location: str | None
    category: str | None
    organizer: str | None
    end: datetime | None
    timezone: str | None
    status: Status
    recurrence: str | None
    exdates: list[datetime] | None
    created_at: datetime | None
    updated_at: datetime | None


_DERIVED = {"date_utc", "end_utc"}


# An occurrence of a recurring event: its series' id and its start in UTC, basic format
# (Google Calendar's <id>_<start> style), with milliseconds when it has any.
OCCURRENCE_ID = r"[0-9a-fA-F]{24}_[0-9]{8}T[0-9]{6}(?:\.[0-9]{3})?Z"


def occurrence_id(series_id: str, start: datetime) -> str:
    moment = dates.instant(start)
    fraction = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    return f"{series_id}_{moment:%Y%m%dT%H%M%S}{fraction}Z"


class OccurrenceRead(EventRead):
    """One occurrence of a recurring event: the series' fields, with its own id, date and
    end, and the series' id."""

    id: str = Field(pattern=r"^[0-9a-f]{24}_[0-9]{8}T[0-9]{6}(?:\.[0-9]{3})?Z$")
    series_id: str = Field(pattern=r"^[0-9a-f]{24}$")


def occurrence_of(event: EventRead, start: datetime) -> OccurrenceRead:
    """The occurrence of the recurring ``event`` that starts at the instant ``start``."""
    found = timing.occurrence_at(event, start)
    return OccurrenceRead(
        **event.model_dump(exclude={"id", "date", "end", *_DERIVED}),
        id=occurrence_id(event.id, start),
        date=found.date,
        end=found.end,
        series_id=event.id,
    )


def fields_of(event: EventRead) -> EventFields:
    return cast(EventFields, event.model_dump(exclude=_DERIVED))


class DeleteResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"message": "Event 68ed254e36d0233aa05afbe9 deleted successfully"}]
        }
    )

    message: str


# How deep an expanded page may start: such a page is merged from two reads of offset +
# limit rows each on MongoDB, and sorted whole by SQLite; this bounds both.
EXPANDED_OFFSET = 10_000


def _one_or_many(value: Any) -> Any:
    """A filter that takes several values also takes one, as itself (EventQuery(category=
    "Music")), and None for none; a query string gives a list either way."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


SortKey = Literal["date", "-date", "title", "-title", "updated", "-updated"]


class EventQuery(BaseModel):
    """Validated list query; every field has its default filled in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000)
    category: Annotated[
        tuple[Category, ...],
        # Field first: after a validator, pydantic would document maxLength, not maxItems.
        Field(max_length=20, description="Any of these categories (repeat the parameter)"),
        BeforeValidator(_one_or_many),
    ] = ()
    organizer: Organizer | None = None
    status: Annotated[
        tuple[Status, ...],
        Field(max_length=4, description="Any of these (repeat it)"),
        BeforeValidator(_one_or_many),
    ] = ()
    date_from: EventDate | None = None
    date_to: EventDate | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    sort: SortKey = "date"
    expand: Annotated[
        bool,
        Field(
            description="List each occurrence of a recurring event (needs date_from and date_to)"
        ),
    ] = False
    cursor: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=cursors.MAX_LENGTH)] | None,
        Field(
            description=(
                'Where the page starts: the opaque value the Link header\'s rel="next" '
                "carries (not with offset; only with the filters, sort and expand it was "
                "given for)"
            ),
            examples=[cursors.EXAMPLE],
        ),
    ] = None

    @model_validator(mode="after")
    def _range_in_order(self) -> EventQuery:
        start, end = self.date_from, self.date_to
        if start and end and dates.instant(start) > dates.instant(end):
            raise ValueError("date_from must not be after date_to")
        if self.expand and (start is None or end is None):
            raise ValueError("expand=true needs a window: both date_from and date_to")
        if self.cursor is not None and self.offset > 0:
            raise ValueError(
                "cursor and offset cannot be combined: a cursor says where the page starts"
            )
        if self.expand and self.offset > EXPANDED_OFFSET:
            raise ValueError(
                f"expand=true pages go {EXPANDED_OFFSET} occurrences deep at most: narrow "
                "the window (date_from, date_to) to go further"
            )
        return self

    def windowed(self) -> bool:
        return self.date_from is not None or self.date_to is not None


def _false_as_written(value: Any) -> Any:
    """``expand=false`` as a query string writes it (Literal[False] alone takes only the
    value False)."""
    return (
        False if isinstance(value, str) and value.lower() in ("false", "0", "off", "no") else value
    )


# The most events one calendar (.ics) page holds: a calendar app subscribing reads one URL.
CALENDAR_LIMIT = 500


class CalendarQuery(EventQuery):
    """GET /api/events.ics: the list's filters, sort and paging, in bigger pages, and no
    expand (a recurring event is one VEVENT, with its RRULE and EXDATEs)."""

    limit: int = Field(CALENDAR_LIMIT, ge=1, le=CALENDAR_LIMIT)
    expand: Annotated[
        Literal[False],
        Field(description="Not here: a recurring event is one VEVENT with its RRULE"),
        BeforeValidator(_false_as_written),
    ] = False


class EventPage(BaseModel):
    items: list[EventRead]
    total: int
    # Whether an item follows the page (None: not known; the total and offset say).
    more: bool | None = None
    # The last item's place in the list's order (None: no item), for the next cursor.
    last: Position | None = None
