"""A row of an import file becomes an event exactly as a POST /api/events body does: the
same pydantic schema (EventCreate: the same fields, limits, date rules and messages), plus
the one field a create does not take, the ``id`` the event is to have.

A row without an id gets one derived from its fields as stored (after trimming and the date
rule): the same event always gets the same id, so importing a file again adds nothing,
whichever order its rows are in. A field left at its default (null, status scheduled) is
not part of that, so a file of the release before these fields derives the ids it did.

A row also keeps the event's ``created_at`` and ``updated_at`` (an export's; null when the
file has none: unknown, never invented), and may carry ``date_utc``/``end_utc`` (as an
API response does), which are derived from the other fields and so are ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationError

from eventapi.events.schemas import (
    EVENT_ID,
    FIELD_DEFAULTS,
    STAMP_FIELDS,
    EventCreate,
    EventRead,
    UtcInstant,
)

# Changing how ids are derived would make every id-less file import again as new events.
_DERIVED_ID_PREFIX = b"eventapi import id v1\n"


class ImportRow(EventCreate):
    """A create's body and, optionally, the event's id as a client may send it (stored
    lower-case)."""

    id: (
        Annotated[str, StringConstraints(pattern=f"^{EVENT_ID}$"), AfterValidator(str.lower)] | None
    ) = None
    created_at: UtcInstant | None = None
    updated_at: UtcInstant | None = None
    date_utc: Annotated[Any, Field(exclude=True)] = None
    end_utc: Annotated[Any, Field(exclude=True)] = None


@dataclass(frozen=True, slots=True)
class Checked:
    event_id: str
    fields: dict[str, Any]  # the event's other fields, checked (a model_dump of them)
    fingerprint: bytes  # of the fields other than id: two rows with one id must agree on it

    @property
    def event(self) -> EventRead:
        return EventRead.model_validate({"id": self.event_id, **self.fields})


Problems = list[tuple[str, str]]  # (field, message); field "" for the row as a whole


def check(data: dict[str, object]) -> Checked | Problems:
    try:
        row = ImportRow.model_validate(data)
    except ValidationError as exc:
        return [(".".join(str(part) for part in err["loc"]), err["msg"]) for err in exc.errors()]
    fields = row.model_dump(exclude={"id"})
    left = {name for name, default in FIELD_DEFAULTS.items() if fields[name] == default}
    canonical = row.model_dump_json(exclude={"id", *STAMP_FIELDS, *left}).encode()
    fingerprint = hashlib.sha256(_DERIVED_ID_PREFIX + canonical).digest()
    event_id = row.id if row.id is not None else fingerprint.hex()[:24]
    return Checked(event_id, fields, fingerprint)
