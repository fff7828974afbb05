"""One guard for every store call: a time bound, and driver errors turned into
StoreUnavailable (the driver's message is logged, never sent to the client)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from eventapi.errors import StoreUnavailable

log = logging.getLogger("eventapi.storage")


@asynccontextmanager
async def guarded(
    timeout: float, driver_errors: tuple[type[BaseException], ...], what: str
) -> AsyncIterator[None]:
    """Bound a store call in time and turn driver failures into StoreUnavailable.

    The driver's own message is logged, never sent to the client.
    """
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        log.warning("%s timed out after %.1fs", what, timeout)
        raise StoreUnavailable() from None
    except driver_errors as exc:
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
        raise StoreUnavailable() from None
