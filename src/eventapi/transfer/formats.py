"""The three file formats: JSON (one array of event objects), JSON Lines (one object per
line) and CSV (a header row naming the columns, then one event per row).

Reading yields every row with where it starts, so a bad row can be pointed at; it parses
JSON with orjson, as the API parses a request body, so a file is refused for what a request
would be (NaN, lone surrogates, nesting over 1024 levels). EventWriter writes files that
reading takes back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from eventapi.events.schemas import EVENT_FIELDS, STAMP_FIELDS, EventRead

Format = Literal["jsonl", "json", "csv"]
FORMATS: tuple[Format, ...] = ("jsonl", "json", "csv")
_BY_EXTENSION: dict[str, Format] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
COLUMNS = ("id", *EVENT_FIELDS, *STAMP_FIELDS)
# In CSV, a list (exdates) is one cell: its values joined by commas (no value has one).
_LISTS = ("exdates",)
# What an export leaves out: derived from the other fields.
_DERIVED = {"date_utc", "end_utc"}
_BOM = b"\xef\xbb\xbf"  # spreadsheets put one before CSV; harmless to allow everywhere


class FileError(Exception):
    """The file as a whole cannot be read: no row of it can be imported."""


def format_of(path: str, chosen: Format | None) -> Format:
    """``chosen``, else the format the file name's extension says (``-``: JSON Lines)."""
    if chosen is not None:
        return chosen
    if path == "-":
        return "jsonl"
    try:
        return _BY_EXTENSION[Path(path).suffix.lower()]
    except KeyError:
        raise FileError(
            f"cannot tell the format from the file name: use --format ({', '.join(FORMATS)})"
        ) from None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a file: its fields as read, or why it could not be read (``problem``).
    ``line`` is where it starts; a JSON array's rows have their ``element`` index instead
    (their lines are looked up only if one needs reporting: see element_lines)."""

    line: int | None
    element: int | None
    data: dict[str, Any]
    problem: str | None = None


def read_rows(stream: IO[bytes], fmt: Format) -> Iterator[Row]:
    stream.seek(0)
    if fmt == "jsonl":
        return _json_lines(stream)
    if fmt == "json":
        return _json_array(stream)
    return _csv_rows(stream)


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return "null" if value is None else kinds.get(type(value), "a number")


def _json_lines(stream: IO[bytes]) -> Iterator[Row]:
    for number, raw in enumerate(stream, start=1):
        text = raw.removeprefix(_BOM) if number == 1 else raw
        if not text.strip():
            continue  # a blank line (the last newline, say) is no row
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Row(number, None, {}, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if isinstance(document, dict):
            yield Row(number, None, document)
        else:
            yield Row(number, None, {}, f"expected a JSON object, got {_kind(document)}")


def _json_array(stream: IO[bytes]) -> Iterator[Row]:
    try:
        document = orjson.loads(stream.read().removeprefix(_BOM))
    except orjson.JSONDecodeError as exc:
        raise FileError(
            f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(document, list):
        raise FileError(f"expected a JSON array of events, got {_kind(document)}")
    for index, item in enumerate(document):
        if isinstance(item, dict):
            yield Row(None, index, item)
        else:
            yield Row(None, index, {}, f"expected a JSON object, got {_kind(item)}")


def element_lines(stream: IO[bytes], count: int) -> list[int]:
    """The line each of the first ``count`` elements of a JSON array starts on.

    orjson says nothing of positions, so this walks the array again with the standard
    library's decoder; only when rows are to be reported, and only as far as needed.
    """
    stream.seek(0)
    text = stream.read().removeprefix(_BOM).decode()
    decoder = json.JSONDecoder()
    lines: list[int] = []
    at = text.index("[") + 1
    line = text.count("\n", 0, at) + 1
    while len(lines) < count:
        while text[at] in " \t\r\n,":  # all that may come between elements: orjson read it
            line += text[at] == "\n"
            at += 1
        lines.append(line)
        _, end = decoder.raw_decode(text, at)
        line += text.count("\n", at, end)
        at = end
    return lines


def _csv_rows(stream: IO[bytes]) -> Iterator[Row]:
    reader = csv.reader(_text_lines(stream))
    header: list[str] | None = None
    end = 0  # the line the previous record ended on
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue  # a blank line
            if header is None:
                header = _header(record, start)
            elif len(record) > len(header):
                yield Row(start, None, {}, f"{len(record)} cells, but the header has {len(header)}")
            else:
                # Missing trailing cells, and empty ones, are fields left out: CSV cannot tell
                # "" from nothing, and no field may be an empty string anyway.
                cells = zip(header, record, strict=False)
                data: dict[str, Any] = {name: cell for name, cell in cells if cell}
                for name in _LISTS:
                    if name in data:
                        data[name] = data[name].split(",")
                yield Row(start, None, data)
    except csv.Error as exc:
        raise FileError(f"line {reader.line_num}: {exc}") from None


def _text_lines(stream: IO[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 file, decoded one by one: an undecodable byte is reported on
    its own line, and a large file is never held in memory whole."""
    for number, raw in enumerate(stream, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise FileError(f"line {number}: not UTF-8 text") from None


def _header(record: list[str], line: int) -> list[str]:
    names = [name.strip() for name in record]
    for name in names:
        if name not in COLUMNS:
            raise FileError(
                f"line {line}: unknown column {name!r}: the columns are {', '.join(COLUMNS)}"
            )
        if names.count(name) > 1:
            raise FileError(f"line {line}: column {name!r} appears twice")
    return names


class EventWriter:
    """Writes events to ``out`` in ``fmt``; ``close()`` ends the file (a JSON array's ``]``)."""

    def __init__(self, out: IO[bytes], fmt: Format) -> None:
        self._out = out
        self._fmt = fmt
        self.count = 0
        if fmt == "json":
            out.write(b"[")
        elif fmt == "csv":
            out.write(",".join(COLUMNS).encode() + b"\n")

    def write(self, events: Sequence[EventRead]) -> None:
        if self._fmt == "csv":
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            for event in events:
                fields = event.model_dump(mode="json")
                for name in _LISTS:
                    if fields[name] is not None:
                        fields[name] = ",".join(fields[name])
                writer.writerow(["" if fields[name] is None else fields[name] for name in COLUMNS])
            self._out.write(text.getvalue().encode())
        else:
            for n, event in enumerate(events, start=self.count):
                document = event.__pydantic_serializer__.to_json(event, exclude=_DERIVED)
                if self._fmt == "jsonl":
                    self._out.write(document + b"\n")
                else:  # one element per line: a mistake in a file edited from it is easy to find
                    self._out.write((b",\n" if n else b"\n") + document)
        self.count += len(events)

    def close(self) -> None:
        if self._fmt == "json":
            self._out.write(b"\n]\n" if self.count else b"]\n")
