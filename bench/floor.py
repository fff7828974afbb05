"""The floor: a bare ASGI app answering every request with the constant bytes of a cached
event GET, so the app's cached GET can be compared with what this server stack can do at
best. Served by uvicorn with the protocol class and options `eventapi serve` gives the app
(``bench.floor:app``; server.py), and by granian for the server comparison.
"""

from __future__ import annotations

from typing import Any

from eventapi.events.samples import SAMPLE_EVENTS

# The body a cached GET /api/events/{id} returns for the Music Festival sample event.
BODY: bytes = SAMPLE_EVENTS[1].model_dump_json().encode()
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)
