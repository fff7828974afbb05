"""All configuration, read once from the environment (prefix ``EVENTAPI_``)."""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, GetCoreSchemaHandler, field_validator
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///data/events.db"
MIN_KEY_LENGTH = 16


def key_digest(key: bytes) -> bytes:
    """What is kept of an API key, configured or presented: its SHA-256. Keys are meant to
    be long random strings (MIN_KEY_LENGTH and up), so a plain hash cannot be reversed."""
    return hashlib.sha256(key).digest()


class ApiKeys:
    """The configured API keys, as digests only: the keys themselves are dropped once
    hashed, and no repr, error or log line can show one.

    From EVENTAPI_API_KEYS: comma-separated; spaces around a key are ignored; an empty value
    means no keys (the API is open). Several keys let a key be rotated: add the new one,
    move the clients over, remove the old one.
    """

    __slots__ = ("digests",)

    def __init__(self, digests: tuple[bytes, ...] = ()) -> None:
        self.digests = digests

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        if not text.strip():
            return cls()
        digests: list[bytes] = []
        for position, raw in enumerate(text.split(","), 1):
            key = raw.strip()
            # The messages name the key's position, never the key.
            if not key:
                raise ValueError(
                    f"key {position} is empty: separate keys with single commas, "
                    "with none at either end"
                )
            if len(key) < MIN_KEY_LENGTH:
                raise ValueError(
                    f"key {position} is shorter than {MIN_KEY_LENGTH} characters; generate one "
                    "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            if not all("!" <= char <= "~" for char in key):
                raise ValueError(
                    f"key {position} has a character that is not printable ASCII "
                    "(or is a space): it could not be sent in an HTTP header"
                )
            digest = key_digest(key.encode("ascii"))
            if digest not in digests:
                digests.append(digest)
        return cls(tuple(digests))

    def __len__(self) -> int:
        return len(self.digests)

    def __repr__(self) -> str:
        return f"ApiKeys(<{len(self.digests)} keys>)"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(repr),
        )

    @classmethod
    def _validate(cls, value: object) -> ApiKeys:
        if isinstance(value, ApiKeys):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise ValueError("expected comma-separated API keys")


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error never repeats the value (an API key, a
    # database password), even in a traceback.
    model_config = SettingsConfigDict(
        env_prefix="EVENTAPI_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="sqlite:///relative/path, sqlite:////absolute/path, mongodb://, mongodb+srv://",
    )
    # Upper bound for one store call before the request fails with 503.
    store_timeout: float = Field(default=2.0, gt=0, le=60)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # text: readable lines; json: one object per line, for log aggregators (logs.py).
    log_format: Literal["text", "json"] = "text"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Connections (http/connections.py): a request head must arrive within header_timeout
    # seconds; a kept-alive connection may sit idle between requests for keepalive_timeout.
    header_timeout: float = Field(default=10.0, gt=0, le=300)
    keepalive_timeout: int = Field(default=5, ge=1, le=300)
    # A request's body must be complete within body_timeout seconds of its head; a process
    # holds at most max_connections open connections (more get 503 and are closed).
    body_timeout: float = Field(default=10.0, gt=0, le=300)
    # Uncached list queries one process runs at once, and one client (events/admission.py).
    list_queries_per_process: int = Field(default=3, ge=1, le=1000)
    list_queries_per_client: int = Field(default=2, ge=1, le=1000)
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)
    # SIGTERM: seconds the requests in flight get to finish before the process exits.
    shutdown_timeout: int = Field(default=30, ge=1, le=3600)

    # Cache. Unset URL: Redis on localhost:6379 if it answers at start-up, else memory://.
    cache_url: str | None = Field(
        default=None, description="redis://, rediss://, memory://, or none (caching off)"
    )
    cache_ttl: float = Field(default=3600, gt=0, description="seconds an event stays cached")
    cache_missing_ttl: float = Field(default=30, gt=0, description="seconds a 404 stays cached")
    cache_list_ttl: float = Field(default=60, gt=0, description="seconds a list page stays")
    cache_max_entries: int = Field(default=10_000, ge=1, description="memory:// size bound")
    cache_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024 * 1024, description="memory:// bound in bytes"
    )
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

    # Following the events (follow/). The change log keeps a record for followers while it
    # is younger than changes_retention seconds and among the newest changes_max_records
    # (the relay's needs are kept whatever these say: eventapi/changes.py). A feed cursor
    # older than that is 410 Gone.
    changes_retention: float = Field(default=7 * 24 * 3600, ge=0)
    changes_max_records: int = Field(default=1_000_000, ge=0)
    # How often each process reads the log for its streams and its answers' change cursor.
    changes_poll_interval: float = Field(default=0.1, gt=0, le=10)
    # Change streams: a comment at least this often; a reader that takes no write for
    # stream_send_timeout seconds is dropped; open streams per process and per client.
    stream_heartbeat: float = Field(default=15.0, gt=0, le=15)
    stream_send_timeout: float = Field(default=10.0, gt=0, le=300)
    streams_per_process: int = Field(default=2000, ge=1, le=100_000)
    streams_per_client: int = Field(default=5, ge=1, le=100_000)

    # Access (http/access.py). Keys set: POST/PUT/PATCH/DELETE need one. No keys: the API is
    # open (start-up says so), which production refuses.
    api_keys: ApiKeys = Field(default_factory=ApiKeys, description="comma-separated API keys")
    # False: reads need a key too (except /health and the documentation).
    public_reads: bool = True
    # production: refuses to start without API keys, and limits writes to 10/second per
    # client unless write_rate_limit says otherwise (ratelimit/rates.py).
    env: Literal["development", "production"] = "development"
    # Comma-separated browser origins allowed cross-origin access (scheme://host[:port]),
    # or "*" alone for any origin. Empty: none. No cookies are involved (keys travel in
    # headers a page sets itself), so credentials are never allowed and "*" is safe to mean
    # "any page may call the API with a key its user gives it".
    cors_origins: str = ""
    # Comma-separated IPs or CIDRs of the reverse proxies allowed to set X-Forwarded-For and
    # X-Forwarded-Proto ("*": any peer). Empty: those headers are ignored.
    trusted_proxies: str = ""
    # Lost updates: true makes a PUT, PATCH or DELETE without If-Match a 428.
    require_if_match: bool = False
    # Rate limits (http/limits.py), e.g. "100/second", "60/minute"; per client (API key,
    # else address). Empty: off, except that production gets a write limit by default.
    rate_limit: str = ""
    write_rate_limit: str = ""

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

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        return ",".join(_origin(entry, position) for position, entry in _entries(value))

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        return ",".join(_proxy(entry, position) for position, entry in _entries(value))

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """EVENTAPI_CORS_ORIGINS, normalised (lower case, no default port)."""
        return tuple(self.cors_origins.split(",")) if self.cors_origins else ()

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        """EVENTAPI_TRUSTED_PROXIES, normalised (CIDRs to their network address)."""
        return tuple(self.trusted_proxies.split(",")) if self.trusted_proxies else ()

    def refusal(self) -> str | None:
        """Why this configuration must not serve requests, in one line; None if it may."""
        if self.env == "production" and not self.api_keys:
            return (
                "EVENTAPI_ENV=production needs EVENTAPI_API_KEYS (comma-separated API keys): "
                "refusing to serve an API anyone can write to"
            )
        return None

    @property
    def safe_database_url(self) -> str:
        """The database URL without its password, for logs and messages."""
        return without_password(self.database_url)

    @property
    def store_backend(self) -> Literal["sqlite", "mongodb"]:
        return "sqlite" if self.database_url.startswith("sqlite:") else "mongodb"


def without_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# EVENTAPI_* variables that are not settings: read by the container's entry point and by
# the tests, never by the app.
NOT_SETTINGS = frozenset(
    {
        "EVENTAPI_WORKERS",
        "EVENTAPI_TEST_MONGODB_URL",
        "EVENTAPI_SCREENSHOTS",
        "EVENTAPI_MODEL_DEEP",
        "EVENTAPI_SCHEMATHESIS_SEED",
    }
)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per EVENTAPI_* variable that names no setting (a typo is otherwise silently
    ignored, and the default used), with the closest setting's name."""
    prefix = Settings.model_config.get("env_prefix", "")
    known = {prefix + name.upper() for name in Settings.model_fields} | NOT_SETTINGS
    lines = []
    for name in sorted(environ):
        if name.upper().startswith(prefix) and name.upper() not in known:
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            lines.append(f"{name} is not a setting and is ignored{hint}")
    return lines


def sqlite_path(url: str) -> str:
    """``sqlite:///data/x.db`` -> ``data/x.db``; ``sqlite:////tmp/x.db`` -> ``/tmp/x.db``."""
    prefix = "sqlite:///"
    return url[len(prefix) :] if url.startswith(prefix) else ""


def _entries(value: str) -> list[tuple[int, str]]:
    """A comma-separated setting as (position, entry) pairs; empty entries refused."""
    if not value.strip():
        return []
    entries = [(position, raw.strip()) for position, raw in enumerate(value.split(","), 1)]
    for position, entry in entries:
        if not entry:
            raise ValueError(f"entry {position} is empty: separate entries with single commas")
    if len(entries) > 1 and any(entry == "*" for _, entry in entries):
        raise ValueError('"*" (any) cannot be combined with other entries')
    return entries


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(entry: str, position: int) -> str:
    """``HTTPS://Example.com:443`` -> ``https://example.com``, as a browser sends Origin."""
    if entry == "*":
        return entry
    shape = f"origin {position} must be scheme://host[:port] (e.g. https://app.example.com)"
    parts = urlsplit(entry)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{shape}: bad port") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{shape}, with scheme http or https")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{shape}, with no path, query or user (not even a trailing /)")
    host = parts.hostname  # lower case, IPv6 brackets removed
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _proxy(entry: str, position: int) -> str:
    if entry == "*":
        return entry
    try:
        if "/" in entry:
            return str(ipaddress.ip_network(entry, strict=False))
        return str(ipaddress.ip_address(entry))
    except ValueError:
        raise ValueError(
            f"entry {position} is not an IP address or CIDR network (e.g. 10.0.0.5, 10.0.0.0/8)"
        ) from None
