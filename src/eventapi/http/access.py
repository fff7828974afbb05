"""Who may call what: API keys for writes (and reads, if configured), CORS, and the OpenAPI
security scheme. Installed by the app factory around everything but the latency timer."""

from __future__ import annotations

from fastapi import FastAPI

from eventapi.settings import Settings


def install_access(app: FastAPI, settings: Settings) -> None:
    """Add the access-control layers to ``app`` (outside the item fast path)."""
