"""`eventapi export`: every event, in a file `eventapi import` reads back.

Events are read in id order, a page at a time (BulkEventStore.scan), so an export of any
size costs one index seek per page and little memory. It is not one snapshot: an event
written during the export appears as its page found it, and one that exists throughout
appears exactly once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TextIO

from eventapi.events.store import BulkEventStore
from eventapi.transfer.formats import EventWriter, Format
from eventapi.transfer.progress import Progress

PAGE = 1000


async def export(store: BulkEventStore, out: IO[bytes], fmt: Format, err: TextIO) -> int:
    """Writes every event to ``out``; returns how many."""
    progress = Progress("exporting", await store.count(), err)
    writer = EventWriter(out, fmt)
    after: str | None = None
    while page := await store.scan(after, PAGE):
        writer.write(page)
        progress.update(writer.count)
        after = page[-1].id
    writer.close()
    progress.finish()
    return writer.count


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replaced_on_success(path: str) -> Iterator[IO[bytes]]:
    """A file that becomes ``path`` only once it is complete: an export that fails half-way
    leaves whatever ``path`` held before, not half a file."""
    target = Path(path)
    fd, part = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        os.chmod(fd, 0o666 & ~_umask())  # as open() would create it; mkstemp makes it private
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
