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

    # Cache. Unset URL: Redis on localhost:6379 if it answers at start-up, else memory://.
    cache_url: str | None = Field(
        default=None, description="redis://, rediss://, memory://, or none (caching off)"
    )
    cache_ttl: float = Field(default=3600, gt=0, description="seconds an event stays cached")
    cache_missing_ttl: float = Field(default=30, gt=0, description="seconds a 404 stays cached")
    cache_list_ttl: float = Field(default=60, gt=0, description="seconds a list page stays")
    cache_max_entries: int = Field(default=10_000, ge=1, description="memory:// size bound")
    # Total time one Redis call may take, retries included; past it the cache is skipped.
    cache_timeout: float = Field(default=0.075, gt=0, le=5)
    # How long a reader waits for another process that holds the lease on the same entry
    # before reading the store itself. Short: a lease can be orphaned by a Redis stall.
    cache_lease_wait: float = Field(default=0.15, ge=0, le=30)
    cache_breaker_reset: float = Field(default=3.0, gt=0, description="seconds between probes")
    # How often every process applies the store's change log to the cache (a missed
    # invalidation reaches the cache within about this long of both being reachable).
    cache_relay_interval: float = Field(default=0.25, gt=0, le=60)
    cache_namespace: str | None = Field(
        default=None, description="key prefix; default: derived from EVENTAPI_DATABASE_URL"
    )

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

    @field_validator("cache_url")
    @classmethod
    def _known_cache(cls, value: str | None) -> str | None:
        if value is None or value == "none":
            return value
        if urlsplit(value).scheme not in {"redis", "rediss", "memory"}:
            raise ValueError("use redis://host:port/db, rediss://..., memory://, or none")
        return value

    @property
    def safe_database_url(self) -> str:
        """The database URL without its password, for logs and messages."""
        parts = urlsplit(self.database_url)
        if parts.password is None:
            return self.database_url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()

    @property
    def store_backend(self) -> Literal["sqlite", "mongodb"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "mongodb"


def sqlite_path(url: str) -> str:
    """``sqlite:///data/x.db`` -> ``data/x.db``; ``sqlite:////tmp/x.db`` -> ``/tmp/x.db``."""
    prefix = "sqlite:///"
    return url[len(prefix) :] if url.startswith(prefix) else ""
