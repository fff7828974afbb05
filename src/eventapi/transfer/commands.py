"""The two commands end to end: open the store (and, for an import, the cache), run, and
report in the CLI's style, one ``eventapi: ...`` line per problem on stderr."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine
from typing import Any

from eventapi.cache.factory import open_cache
from eventapi.errors import StoreUnavailable
from eventapi.metrics import Metrics
from eventapi.seeding import retire_shared_cache
from eventapi.settings import Settings
from eventapi.storage.factory import open_store
from eventapi.transfer.exporter import export, replaced_on_success
from eventapi.transfer.formats import FileError, Format, format_of
from eventapi.transfer.importer import InvalidRows, plan, private_copy, write


def import_file(settings: Settings, path: str, chosen: Format | None) -> int:
    """`eventapi import`: its exit status."""
    interrupted = (
        "import interrupted: the batches already written stay (an import into an empty "
        "database writes them all at once: none); run it again to add the rest"
    )
    return _run(settings, run_import(settings, path, chosen), interrupted)


def export_file(settings: Settings, path: str | None, chosen: Format | None) -> int:
    """`eventapi export`: its exit status."""
    to_file = path not in (None, "-")
    interrupted = "export interrupted" + (f": {path} was left as it was" if to_file else "")
    return _run(settings, run_export(settings, path, chosen), interrupted)


def _run(settings: Settings, command: Coroutine[Any, Any, int], interrupted: str) -> int:
    try:
        return asyncio.run(command)
    except KeyboardInterrupt:
        print(f"eventapi: {interrupted}", file=sys.stderr)
        return 130
    except StoreUnavailable as exc:
        where = settings.safe_database_url
        print(f"eventapi: the database at {where} is unavailable: {exc}", file=sys.stderr)
        return 1


async def run_import(settings: Settings, path: str, chosen: Format | None) -> int:
    out, err = sys.stdout, sys.stderr
    name = "<stdin>" if path == "-" else path
    try:
        fmt = format_of(path, chosen)
        with private_copy(path) as copy:
            found = plan(copy, fmt, err)  # before the store is opened: a bad file changes nothing
            with contextlib.closing(found):
                async with open_store(settings) as store, open_cache(settings, Metrics()) as cache:
                    try:
                        done = await write(store, found, err)
                    finally:
                        # Even after a failure: the batches written before it stay written.
                        note = await retire_shared_cache(cache)
    except FileError as exc:
        print(f"eventapi: {name}: {exc}", file=err)
        return 1
    except InvalidRows as exc:
        for invalid in exc.shown:
            print(f"eventapi: {invalid.describe(name)}", file=err)
        unlisted = f" (only the first {len(exc.shown)} problems are listed)" if exc.more else ""
        print(
            f"eventapi: nothing imported: {exc.count} of the {exc.rows} rows of {name} are "
            f"invalid{unlisted}",
            file=err,
        )
        return 1
    skipped = [f"{done.present} already present"] if done.present else []
    skipped += [f"{done.repeated} repeated in the file"] if done.repeated else []
    print(
        f"Imported {done.added} events from {name}"
        + (f" ({', '.join(skipped)})." if skipped else "."),
        file=out,
    )
    if note:
        print(note, file=out)
    return 0


async def run_export(settings: Settings, path: str | None, chosen: Format | None) -> int:
    err = sys.stderr
    to_file = path not in (None, "-")
    try:
        fmt = format_of(path or "-", chosen)
    except FileError as exc:
        print(f"eventapi: {path}: {exc}", file=err)
        return 1
    async with open_store(settings) as store:
        try:
            if path is None or path == "-":
                count = await export(store, sys.stdout.buffer, fmt, err)
                sys.stdout.buffer.flush()
            else:
                with replaced_on_success(path) as file:
                    count = await export(store, file, fmt, err)
        except BrokenPipeError:
            # The reader left (`eventapi export | head`): stop quietly, as cat does. Point
            # stdout at /dev/null so that the interpreter's last flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except OSError as exc:
            print(f"eventapi: {path}: {exc.strerror or exc}", file=err)
            return 1
    print(f"Exported {count} events" + (f" to {path}." if to_file else "."), file=err)
    return 0
