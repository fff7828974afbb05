"""`eventapi import` and `eventapi export`: the real console script on real SQLite files,
a running server whose cache must not go stale, and the same commands in-process over every
store backend."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventapi.events.schemas import ORIGINAL_FIELDS, EventRead
from eventapi.events.store import BulkEventStore, EventStore
from eventapi.settings import Settings
from eventapi.storage.factory import open_store
from eventapi.storage.mongo import MongoEventStore
from eventapi.storage.sqlite import SqliteEventStore
from eventapi.transfer import importer
from eventapi.transfer.exporter import export, replaced_on_success
from eventapi.transfer.formats import COLUMNS, FileError, Format, element_lines, read_rows
from eventapi.transfer.importer import plan, write
from eventapi.transfer.progress import Progress
from eventapi.transfer.rows import Checked, ImportRow, check
from tests.api.helpers import fields, with_defaults
from tests.support.api import MUSIC_FESTIVAL
from tests.support.cluster import STORE_OPERATIONS, Api, metric, scrape
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import EVENTAPI, free_port, read_until, run, serve
from tests.support.settings import clean_env, server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

Row = dict[str, Any]
EXTENSION = {"json": "json", "jsonl": "jsonl", "csv": "csv"}
FORMATS: list[Format] = ["json", "jsonl", "csv"]
FESTIVAL_ID: str = MUSIC_FESTIVAL["id"]

ROWS: list[Row] = [
    {
        "id": FESTIVAL_ID.upper(),  # either case, as in a URL; stored lower-case
        "title": "  Music Festival ",  # trimmed, as by POST
        "description": "Three-day outdoor music festival",
        "date": "2025-08-20T14:00:00",
        "location": "Austin, TX",
        "category": "Music",
        "organizer": "Live Nation",
    },
    # No id: one derived from the fields. Commas, quotes and a newline for CSV to carry.
    {"title": 'Jazz, "live"\nNight', "date": "2025-06-01T19:30:00+02:00", "category": "Music"},
    {"title": "Bare", "date": "2025-01-01T00:00:00.123456"},
]
# What the API would store and return for ROWS (ids of id-less rows left out).
STORED: list[Row] = [
    MUSIC_FESTIVAL,
    {
        "title": 'Jazz, "live"\nNight',
        "description": None,
        "date": "2025-06-01T17:30:00Z",
        "location": None,
        "category": "Music",
        "organizer": None,
    },
    {
        "title": "Bare",
        "description": None,
        "date": "2025-01-01T00:00:00.123",
        "location": None,
        "category": None,
        "organizer": None,
    },
]


def file_text(rows: Sequence[Row], fmt: Format) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows)
    if fmt == "json":
        return json.dumps(list(rows), indent=2)  # elements over several lines each
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_file(folder: Path, rows: Sequence[Row], fmt: Format, name: str = "events") -> Path:
    path = folder / f"{name}.{EXTENSION[fmt]}"
    path.write_text(file_text(rows, fmt), encoding="utf-8")
    return path


@pytest.fixture
def quiet(env: dict[str, str]) -> dict[str, str]:
    """The CLI environment with caching off: no Redis on localhost is looked for."""
    return {**env, "EVENTAPI_CACHE_URL": "none"}


def eventapi(
    env: dict[str, str], cwd: Path, *args: str | Path, stdin: str = "", ok: bool = True
) -> subprocess.CompletedProcess[str]:
    done = run([EVENTAPI, *map(str, args)], env, cwd, stdin)
    if ok:
        assert done.returncode == 0, done
        assert "Traceback" not in done.stderr, done.stderr
    return done


async def stored(env: dict[str, str]) -> list[EventRead]:
    """Every event in the database ``env`` names, in id order."""
    async with open_store(Settings(database_url=env["EVENTAPI_DATABASE_URL"])) as store:
        return list(await store.scan(None, 1000))


def without_ids(events: Sequence[EventRead]) -> list[Row]:
    return sorted(
        (e.model_dump(mode="json", include=set(ORIGINAL_FIELDS)) for e in events),
        key=lambda e: e["title"],
    )


def expected_without_ids() -> list[Row]:
    return sorted(
        ({k: v for k, v in e.items() if k != "id"} for e in STORED), key=lambda e: e["title"]
    )


# --- import: each format ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_import_stores_each_row_as_the_api_would(
    quiet: dict[str, str], tmp_path: Path, fmt: Format
) -> None:
    path = write_file(tmp_path, ROWS, fmt)

    done = eventapi(quiet, tmp_path, "import", path)

    assert f"Imported 3 events from {path}." in done.stdout
    assert "checking: 3 rows" in done.stderr  # plain progress lines: stderr is no terminal
    assert "importing: 3/3 events" in done.stderr
    events = await stored(quiet)
    assert without_ids(events) == expected_without_ids()
    assert FESTIVAL_ID in {e.id for e in events}


async def test_rows_without_ids_get_the_same_id_from_any_format(
    quiet: dict[str, str], tmp_path: Path
) -> None:
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS, "jsonl"))
    before = await stored(quiet)

    for fmt in ("csv", "json"):
        done = eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS[::-1], fmt))
        assert "Imported 0 events" in done.stdout
        assert "(3 already present)" in done.stdout

    assert await stored(quiet) == before


async def test_importing_again_adds_nothing(quiet: dict[str, str], tmp_path: Path) -> None:
    path = write_file(tmp_path, ROWS, "jsonl")
    eventapi(quiet, tmp_path, "import", path)
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS[:1], "csv", "one"))

    done = eventapi(quiet, tmp_path, "import", path)

    assert "Imported 0 events" in done.stdout
    assert len(await stored(quiet)) == 3


async def test_an_id_already_stored_is_left_as_it_is(quiet: dict[str, str], tmp_path: Path) -> None:
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS[:1], "jsonl"))
    changed = {**ROWS[0], "title": "Renamed"}

    done = eventapi(quiet, tmp_path, "import", write_file(tmp_path, [changed, ROWS[2]], "csv"))

    assert "Imported 1 events" in done.stdout
    assert "(1 already present)" in done.stdout
    titles = {e.id: e.title for e in await stored(quiet)}
    assert titles[FESTIVAL_ID] == "Music Festival"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_import_reads_standard_input(
    quiet: dict[str, str], tmp_path: Path, fmt: Format
) -> None:
    args = ["import", "-"] + (["--format", "csv"] if fmt == "csv" else [])

    done = eventapi(quiet, tmp_path, *args, stdin=file_text(ROWS, fmt))

    assert "Imported 3 events from <stdin>." in done.stdout
    assert without_ids(await stored(quiet)) == expected_without_ids()


async def test_format_option_overrides_the_extension(quiet: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_text(file_text(ROWS, "csv"))

    eventapi(quiet, tmp_path, "import", path, "--format", "csv")

    assert len(await stored(quiet)) == 3


async def test_repeated_rows_count_once(quiet: dict[str, str], tmp_path: Path) -> None:
    path = write_file(
        tmp_path, [ROWS[1], ROWS[0], ROWS[1], {**ROWS[0], "title": "Music Festival"}], "csv"
    )

    done = eventapi(quiet, tmp_path, "import", path)

    assert "Imported 2 events" in done.stdout
    assert "(2 repeated in the file)" in done.stdout
    assert len(await stored(quiet)) == 2


# --- import: invalid rows -----------------------------------------------------------------


def bad_row_line(text: str, fmt: Format) -> int:
    """The line the row titled BAD starts on, found in the text as written."""
    at = text.index("BAD")
    start = text.rindex("{", 0, at) if fmt != "csv" else text.rindex("\n", 0, at) + 1
    return text.count("\n", 0, start) + 1


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_bad_row_in_the_middle_is_reported_and_nothing_is_imported(
    quiet: dict[str, str], tmp_path: Path, fmt: Format
) -> None:
    good = [{"title": f"Event {n}", "date": f"2025-03-{n + 1:02d}T10:00:00"} for n in range(6)]
    bad = {"title": "BAD", "date": "next tuesday"}
    rows = [*ROWS, *good[:3], bad, *good[3:]]  # ROWS first: a row over two CSV lines
    path = write_file(tmp_path, rows, fmt)
    line = bad_row_line(path.read_text(), fmt)

    done = eventapi(quiet, tmp_path, "import", path, ok=False)

    assert done.returncode == 1
    where = f"{path}:{line}: [6].date: " if fmt == "json" else f"{path}:{line}: date: "
    assert f"eventapi: {where}" in done.stderr, done.stderr
    assert "ISO 8601" in done.stderr  # the API's own message
    assert f"eventapi: nothing imported: 1 of the 10 rows of {path} are invalid" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert await stored(quiet) == []


async def test_every_field_problem_of_every_row_is_reported(
    quiet: dict[str, str], tmp_path: Path
) -> None:
    rows: list[Row] = [
        {"title": "ok", "date": "2025-01-01T00:00:00"},
        {"date": "2025-01-01T00:00:00", "colour": "red"},  # line 2: title missing, extra field
        {"title": "x" * 201, "date": 1700000000, "id": "not-an-id"},  # line 3
    ]
    path = write_file(tmp_path, rows, "jsonl")
    with path.open("a") as f:
        f.write('[1, 2]\n\n{"title": "truncated"\n')  # lines 4 and 6 (5 is blank: no row)

    done = eventapi(quiet, tmp_path, "import", path, ok=False)

    problems = [line.removeprefix("eventapi: ") for line in done.stderr.splitlines()]
    assert f"{path}:2: title: Field required" in problems
    assert any(p.startswith(f"{path}:2: colour: Extra inputs are not permitted") for p in problems)
    assert any(p.startswith(f"{path}:3: title: String should have at most 200") for p in problems)
    assert any(p.startswith(f"{path}:3: date: ") for p in problems)
    assert any(p.startswith(f"{path}:3: id: String should match pattern") for p in problems)
    assert f"{path}:4: expected a JSON object, got an array" in problems
    assert any(p.startswith(f"{path}:6: not valid JSON: ") for p in problems)
    assert problems[-1] == f"nothing imported: 4 of the 5 rows of {path} are invalid"
    assert await stored(quiet) == []


async def test_only_the_first_problems_are_listed(quiet: dict[str, str], tmp_path: Path) -> None:
    path = write_file(tmp_path, [{"date": "2025-01-01T00:00:00"}] * 30, "jsonl")

    done = eventapi(quiet, tmp_path, "import", path, ok=False)

    lines = done.stderr.splitlines()
    assert sum(": title: Field required" in line for line in lines) == 20
    assert lines[-1].endswith(
        "30 of the 30 rows of " + f"{path} are invalid (only the first 20 problems are listed)"
    )


async def test_one_id_for_two_different_events_is_an_invalid_row(
    quiet: dict[str, str], tmp_path: Path
) -> None:
    clash = {**ROWS[2], "id": FESTIVAL_ID}
    cases: list[tuple[Format, str]] = [("jsonl", "line 1"), ("json", "[0]")]
    for fmt, where in cases:
        path = write_file(tmp_path, [ROWS[0], ROWS[1], clash], fmt)

        done = eventapi(quiet, tmp_path, "import", path, ok=False)

        assert f"id: {FESTIVAL_ID} is also the id of {where}, with other fields" in done.stderr
    assert await stored(quiet) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("events.txt", "{}", "events.txt: cannot tell the format from the file name: use --format"),
        ("events.json", '[{"a": 1},\n  NaN]', "events.json: line 2, column 3: not valid JSON: "),
        (
            "events.json",
            '{"title": "x"}',
            "events.json: expected a JSON array of events, got an object",
        ),
        ("events.csv", "title,date,colour\n", "events.csv: line 1: unknown column 'colour'"),
        ("events.csv", "\ntitle,date,title\n", "events.csv: line 2: column 'title' appears twice"),
        (
            "events.csv",
            "title,date\nok,2025-01-01T00:00:00\n\xff\xfe,x\n",
            "events.csv: line 3: not UTF-8 text",
        ),
        ("missing.jsonl", None, "missing.jsonl: No such file or directory"),
    ],
    ids=[
        "extension",
        "json-syntax",
        "json-object",
        "csv-column",
        "csv-twice",
        "csv-utf8",
        "missing",
    ],
)
async def test_a_file_that_cannot_be_read_is_one_line(
    quiet: dict[str, str], tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(
            content.encode("latin-1") if "\xff" in content else content.encode()
        )

    done = eventapi(quiet, tmp_path, "import", name, ok=False)

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(f"eventapi: {message}"), done.stderr
    assert "Traceback" not in done.stderr


def test_csv_cells_beyond_the_header_make_the_row_invalid(
    quiet: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text("\ufefftitle,date\nok,2025-01-01T00:00:00\nx,2025-01-01T00:00:00,extra\n")

    done = eventapi(quiet, tmp_path, "import", path, ok=False)

    assert f"eventapi: {path}:3: 3 cells, but the header has 2" in done.stderr


def rows_of(data: bytes, fmt: Format) -> list[tuple[int | None, int | None, str | None]]:
    return [(r.line, r.element, r.problem) for r in read_rows(io.BytesIO(data), fmt)]


def test_json_array_elements_are_found_on_their_lines() -> None:
    data = b'\n\n  [ {"title":\n"a"},\n\n 2 ,null, "x\\ny",\n[]]'

    assert rows_of(data, "json") == [
        (None, 0, None),
        (None, 1, "expected a JSON object, got a number"),
        (None, 2, "expected a JSON object, got null"),
        (None, 3, "expected a JSON object, got a string"),
        (None, 4, "expected a JSON object, got an array"),
    ]
    assert element_lines(io.BytesIO(data), 5) == [3, 6, 6, 6, 7]


def test_a_csv_cell_too_large_for_the_reader_is_a_file_error() -> None:
    data = b"title,date\n" + b"x" * 200_000 + b",2025-01-01T00:00:00\n"

    with pytest.raises(FileError, match=r"^line 2: field larger than field limit"):
        rows_of(data, "csv")


# --- export -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_export_then_import_gives_the_same_events(
    quiet: dict[str, str], tmp_path: Path, fmt: Format
) -> None:
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS, "jsonl"))
    out = tmp_path / f"out.{EXTENSION[fmt]}"

    done = eventapi(quiet, tmp_path, "export", "-o", out)
    assert f"Exported 3 events to {out}." in done.stderr
    copy = {**quiet, "EVENTAPI_DATABASE_URL": f"sqlite:///{tmp_path}/copy.db"}
    imported = eventapi(copy, tmp_path, "import", out)

    assert "Imported 3 events" in imported.stdout
    assert await stored(copy) == await stored(quiet)
    assert eventapi(copy, tmp_path, "export").stdout == eventapi(quiet, tmp_path, "export").stdout


async def test_export_to_standard_output_pipes_into_import(
    quiet: dict[str, str], tmp_path: Path
) -> None:
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS, "jsonl"))
    copy = {**quiet, "EVENTAPI_DATABASE_URL": f"sqlite:///{tmp_path}/copy.db"}

    for fmt in FORMATS:
        exported = eventapi(quiet, tmp_path, "export", "--format", fmt).stdout
        eventapi(copy, tmp_path, "import", "-", "--format", fmt, stdin=exported)

    assert await stored(copy) == await stored(quiet)
    lines = eventapi(quiet, tmp_path, "export").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == sorted(e.id for e in await stored(quiet))


@pytest.mark.parametrize(
    ("fmt", "empty"), [("jsonl", ""), ("json", "[]\n"), ("csv", ",".join(COLUMNS) + "\n")]
)
def test_an_empty_database_exports_an_empty_file(
    quiet: dict[str, str], tmp_path: Path, fmt: Format, empty: str
) -> None:
    done = eventapi(quiet, tmp_path, "export", "--format", fmt)

    assert done.stdout == empty
    again = eventapi(quiet, tmp_path, "import", "-", "--format", fmt, stdin=done.stdout)
    assert "Imported 0 events" in again.stdout


def test_export_keeps_the_old_file_when_it_fails(quiet: dict[str, str], tmp_path: Path) -> None:
    blocked = tmp_path / "no-such-folder" / "out.jsonl"
    done = eventapi(quiet, tmp_path, "export", "-o", blocked, ok=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"eventapi: {blocked}: No such file or directory"

    old = tmp_path / "old.jsonl"
    old.write_text("before\n")
    done = eventapi(quiet, tmp_path, "export", "-o", old)
    assert old.read_text() == ""  # replaced whole: the database is empty
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []

    unknown = eventapi(quiet, tmp_path, "export", "-o", tmp_path / "out.xml", ok=False)
    assert "out.xml: cannot tell the format from the file name" in unknown.stderr


def test_a_failed_export_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("before\n")

    def fail_half_way() -> None:
        with replaced_on_success(str(target)) as out:
            out.write(b"half an export")
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        fail_half_way()

    assert target.read_text() == "before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = clean_env(
        EVENTAPI_DATABASE_URL=f"mongodb://127.0.0.1:{free_port()}/eventapi",
        EVENTAPI_STORE_TIMEOUT="0.3",
        EVENTAPI_CACHE_URL="none",
    )
    path = write_file(tmp_path, ROWS, "jsonl")
    for args in (["export"], ["import", str(path)]):
        done = eventapi(env, tmp_path, *args, ok=False)
        assert done.returncode == 1
        assert done.stderr.splitlines()[-1].startswith(
            "eventapi: the database at mongodb://127.0.0.1:"
        ), done.stderr
        assert "is unavailable" in done.stderr
        assert "Traceback" not in done.stderr


def test_export_stops_quietly_when_the_reader_leaves(quiet: dict[str, str], tmp_path: Path) -> None:
    many = [{"title": f"Event {n}", "date": "2025-01-01T00:00:00"} for n in range(3000)]
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, many, "jsonl"))
    pipe = subprocess.PIPE
    with subprocess.Popen(
        [EVENTAPI, "export"], env=quiet, cwd=tmp_path, stdout=pipe, stderr=pipe
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        read_until(proc.stdout, b"\n")  # more than a pipe holds is on its way
        proc.stdout.close()
        code = proc.wait(timeout=20)
        stderr = proc.stderr.read().decode()
    assert code == 1
    assert "Traceback" not in stderr, stderr


# --- the cache of a running server --------------------------------------------------------


async def cached_reads(http: httpx.AsyncClient) -> None:
    """The event (a "not found") and a list page, each cached by the server."""
    for _ in range(2):
        item = await http.get(f"/api/events/{FESTIVAL_ID}")
        page = await http.get("/api/events", params={"category": "music"})
        assert (item.status_code, page.json()) == (404, [])
    assert page.headers["x-cache"] == "HIT"
    # A "not found" carries no X-Cache: the store's count shows the second came from the cache.
    assert metric(await scrape(Api("A", http)), STORE_OPERATIONS, operation="get") == 1


async def test_a_server_sharing_redis_serves_the_import_at_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # The server's own relay would catch up only after a minute: what it serves right after
    # the import can only be fresh because the import retired the shared cache.
    env = server_env(tmp_path / "events.db", redis_server.url, cache_relay_interval=60)
    with serve(tmp_path, "A", env) as server:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            await cached_reads(http)

            done = eventapi(env, tmp_path, "import", write_file(tmp_path, ROWS, "jsonl"))
            assert "Note" not in done.stdout  # Redis: the shared cache was retired

            item = await http.get(f"/api/events/{FESTIVAL_ID}")
            page = await http.get("/api/events", params={"category": "music"})
    assert (item.status_code, fields(item.json())) == (200, with_defaults(STORED[0]))
    assert page.headers["x-total-count"] == "2"
    assert {e["title"] for e in page.json()} == {"Music Festival", 'Jazz, "live"\nNight'}


async def test_a_server_with_its_own_cache_serves_the_import_within_a_relay_pass(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path / "events.db", "memory://")
    with serve(tmp_path, "A", env) as server:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            await cached_reads(http)

            done = eventapi(env, tmp_path, "import", write_file(tmp_path, ROWS, "jsonl"))
            assert "change log" in done.stdout  # the note: no shared cache here

            async def fresh() -> bool:
                item = await http.get(f"/api/events/{FESTIVAL_ID}")
                page = await http.get("/api/events", params={"category": "music"})
                return item.status_code == 200 and page.headers["x-total-count"] == "2"

            await eventually(fresh, "the imported events served", within=5.0)


@pytest.mark.parametrize("holding", [0, 1], ids=["empty", "holding-events"])
def test_an_interrupted_import_keeps_its_batches_and_a_rerun_finishes_it(
    quiet: dict[str, str], tmp_path: Path, holding: int
) -> None:
    """Into a database that holds events the batches written stay; into an empty one the
    import is one transaction, so nothing does."""
    if holding:
        eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS[:1], "jsonl", "one"))
    many = [{"title": f"Event {n}", "date": "2025-01-01T00:00:00"} for n in range(20_000)]
    path = write_file(tmp_path, many, "jsonl")
    pipe = subprocess.PIPE
    with subprocess.Popen(
        [EVENTAPI, "import", str(path)], env=quiet, cwd=tmp_path, stdout=pipe, stderr=pipe
    ) as proc:
        assert proc.stderr is not None
        read_until(proc.stderr, b"importing: 0/20000")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        stderr = proc.stderr.read().decode()
    assert code == 130, stderr
    assert "eventapi: import interrupted: the batches already written stay" in stderr
    assert "Traceback" not in stderr
    if not holding:
        count = eventapi(quiet, tmp_path, "seed", "--count")
        assert "holds 0 events" in count.stdout

    done = eventapi(quiet, tmp_path, "import", path)
    assert "Imported" in done.stdout
    count = eventapi(quiet, tmp_path, "seed", "--count")
    assert f"holds {20_000 + holding} events" in count.stdout


# --- in-process, over every store backend -------------------------------------------------


def as_bulk(store: EventStore) -> BulkEventStore:
    assert isinstance(store, SqliteEventStore | MongoEventStore)
    return store


async def import_text(store: EventStore, text: str, fmt: Format) -> tuple[int, int]:
    copy = io.BytesIO(text.encode())
    err = io.StringIO()
    with contextlib.closing(plan(copy, fmt, err)) as found:
        done = await write(as_bulk(store), found, err)
    return done.added, done.present


@pytest.mark.parametrize("fmt", FORMATS)
async def test_import_and_export_on_every_backend(
    store: EventStore, fmt: Format, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches and chunks, so that these rows span several of each.
    monkeypatch.setattr(importer, "BATCH", 1000)
    monkeypatch.setattr(importer, "CHUNK", 700)
    many = [{"title": f"Event {n}", "date": f"2025-01-01T{n % 24:02d}:00:00Z"} for n in range(2500)]
    rows = [*ROWS, *many]  # more than two batches

    assert await import_text(store, file_text(rows, fmt), fmt) == (len(rows), 0)
    assert await import_text(store, file_text(rows, fmt), fmt) == (0, len(rows))

    out = io.BytesIO()
    assert await export(as_bulk(store), out, fmt, io.StringIO()) == len(rows)
    read_back = [check(row.data) for row in read_rows(io.BytesIO(out.getvalue()), fmt)]
    events = [c.event for c in read_back if isinstance(c, Checked)]
    assert events == list(await as_bulk(store).scan(None, 10_000))
    festival = events[[e.id for e in events].index(FESTIVAL_ID)]
    assert festival.model_dump(mode="json", include={"id", *ORIGINAL_FIELDS}) == STORED[0]


def test_an_import_row_is_the_api_create_schema_plus_an_id() -> None:
    from eventapi.events.schemas import EventCreate

    assert issubclass(ImportRow, EventCreate)
    # The server's stamps an export carries; the derived instants, accepted and ignored.
    stamps = {"created_at", "updated_at", "date_utc", "end_utc"}
    assert set(ImportRow.model_fields) == {*EventCreate.model_fields, "id", *stamps}


# --- progress -----------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_line_redrawn() -> None:
    out = Terminal()
    progress = Progress("importing", 4000, out)
    for done in (0, 1000, 2000, 4000):
        progress.update(done)
    progress.finish()

    frames = out.getvalue().split("\r")[1:]
    assert frames[0] == "importing [" + "." * 30 + "] 0/4000 events"
    assert frames[2] == "importing [" + "#" * 15 + "." * 15 + "] 2000/4000 events"
    assert frames[-1] == "importing [" + "#" * 30 + "] 4000/4000 events\n"


def test_progress_of_an_unknown_total_counts() -> None:
    out = Terminal()
    progress = Progress("checking", None, out, unit="rows")
    progress.update(1000)
    progress.finish()
    assert out.getvalue() == "\rchecking: 1000 rows\rchecking: 1000 rows\n"

    plain = io.StringIO()
    progress = Progress("checking", None, plain, unit="rows")
    progress.update(1000)
    progress.finish()
    assert plain.getvalue() == "checking: 1000 rows\n"


def test_plain_progress_is_a_line_per_tenth_and_survives_a_total_passed() -> None:
    out = io.StringIO()
    progress = Progress("exporting", 100, out)
    for done in range(0, 121, 5):
        progress.update(done)
    progress.finish()

    lines = out.getvalue().splitlines()
    assert lines[0] == "exporting: 0/100 events"
    assert len(lines) == 11
    assert lines[-1] == "exporting: 100/100 events"

    empty = io.StringIO()
    progress = Progress("exporting", 0, empty)
    progress.update(0)
    progress.finish()
    assert empty.getvalue() == "exporting: 0/0 events\n"


def test_progress_lines_show_on_stderr_only(quiet: dict[str, str], tmp_path: Path) -> None:
    eventapi(quiet, tmp_path, "import", write_file(tmp_path, ROWS, "jsonl"))
    done = eventapi(quiet, tmp_path, "export")
    assert "exporting: 3/3 events" in done.stderr
    assert "exporting" not in done.stdout


def test_the_commands_are_listed_and_documented(quiet: dict[str, str], tmp_path: Path) -> None:
    usage = run([EVENTAPI], quiet, tmp_path)
    assert "import" in usage.stderr
    assert "export" in usage.stderr
    for command in ("import", "export"):
        assert "--format" in eventapi(quiet, tmp_path, command, "--help").stdout


def test_import_and_export_load_no_web_framework() -> None:
    """The transfer commands start without the web framework: importing it took an
    `eventapi export` from 0.25 s to 0.45 s."""
    probe = (
        "import sys, eventapi.transfer.commands;"
        "print(sorted({'fastapi', 'starlette'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout


CALENDAR_ROWS: list[Row] = [
    {
        "id": "6900000000000000000000a1",
        "title": "Tuesday meetup",
        "date": "2027-01-05T18:00:00",
        "end": "2027-01-05T20:00:00",
        "timezone": "America/Chicago",
        "status": "postponed",
        "recurrence": "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270601T000000Z",
        "exdates": ["2027-03-09T18:00:00", "2027-03-23T23:00:00Z"],
        "created_at": "2026-01-02T03:04:05.678Z",
        "updated_at": "2026-02-03T04:05:06.789Z",
    },
    {
        "id": "6900000000000000000000a2",
        "title": "Cancelled gala",
        "date": "2026-05-01T19:00:00Z",
        "end": "2026-05-01T23:30:00.250Z",
        "status": "cancelled",
    },
]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_calendar_fields_go_out_and_come_back(store: EventStore, fmt: Format) -> None:
    """An export carries every field (the server's stamps too, never the derived UTC
    instants), and importing it makes the same events, on every backend and format."""
    assert await import_text(store, file_text(CALENDAR_ROWS, "jsonl"), "jsonl") == (2, 0)
    before = list(await as_bulk(store).scan(None, 10))

    out = io.BytesIO()
    assert await export(as_bulk(store), out, fmt, io.StringIO()) == 2
    assert b"date_utc" not in out.getvalue()
    await store.delete_all()
    assert await import_text(store, out.getvalue().decode(), fmt) == (2, 0)

    after = list(await as_bulk(store).scan(None, 10))
    assert after == before
    meetup = after[0].model_dump(mode="json")
    assert {k: meetup[k] for k in CALENDAR_ROWS[0]} == CALENDAR_ROWS[0]
    assert after[1].created_at is None  # the file had none: unknown, never invented


async def test_an_export_of_the_previous_release_still_imports(store: EventStore) -> None:
    """The file the previous release's `eventapi export` wrote (tests/store/upgrade)."""
    from tests.store.upgrade.fixtures import EXPORT, manifest

    recorded = manifest()["stores"]["sqlite"]["events"]
    text = EXPORT.read_text(encoding="utf-8")

    assert await import_text(store, text, "jsonl") == (len(recorded), 0)
    for event in await as_bulk(store).scan(None, 1000):
        now = event.model_dump(mode="json")
        assert {k: now[k] for k in recorded[event.id]} == recorded[event.id]
        assert (now["status"], now["created_at"], now["end"]) == ("scheduled", None, None)
