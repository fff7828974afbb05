"""Rate limits per client (API key, else address): EVENTAPI_RATE_LIMIT for every request,
EVENTAPI_WRITE_RATE_LIMIT for writes. Installed by the app factory just inside the access
check, so the client is known and a 401 costs no token."""

from __future__ import annotations

from fastapi import FastAPI

from eventapi.settings import Settings


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Add the rate limiter to ``app`` when a limit applies."""
