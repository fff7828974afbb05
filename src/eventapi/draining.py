"""Whether this server process has begun its graceful shutdown (SIGTERM).

uvicorn then stops accepting connections and waits for the responses in flight to finish,
which a change stream never does by itself; so the connections' protocol
(http/connections.py) calls ``begin`` as the shutdown starts, and every open stream ends at
once with a retry hint (follow/stream.py). Process-wide, like the signal it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

# The scope extension under which `eventapi serve`'s protocol gives a response its
# connection's abort: a change stream drops a reader that stopped reading with it.
ABORT = "eventapi.abort"


class Draining:
    _listeners: ClassVar[list[Callable[[], None]]] = []

    @classmethod
    def listen(cls, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when the shutdown begins; returns what stops listening."""
        cls._listeners.append(listener)
        return lambda: cls._listeners.remove(listener)

    @classmethod
    def begin(cls) -> None:
        for listener in list(cls._listeners):
            listener()
