"""All configuration, read once from the environment (prefix ``EVENTAPI_``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///data/events.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVENTAPI_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="sqlite:///relative/path, sqlite:////absolute/path, mongodb://, mongodb+srv://",
    )
    # Upper bound for one store call before the request fails with 503.
    store_timeout: float = Field(default=2.0, gt=0, le=60)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"sqlite", "mongodb", "mongodb+srv"}:
            raise ValueError(
                f"unsupported scheme {scheme!r}: use sqlite:///path, mongodb:// or mongodb+srv://"
            )
        if scheme == "sqlite" and not sqlite_path(value):
            raise ValueError("sqlite URL needs a file path, e.g. sqlite:///data/events.db")
        return value

    @property
    def store_backend(self) -> Literal["sqlite", "mongodb"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "mongodb"


def sqlite_path(url: str) -> str:
    """``sqlite:///data/x.db`` -> ``data/x.db``; ``sqlite:////tmp/x.db`` -> ``/tmp/x.db``."""
    prefix = "sqlite:///"
    return url[len(prefix) :] if url.startswith(prefix) else ""
