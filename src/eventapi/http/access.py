"""Who may call what: API keys for writes (and reads, if configured), CORS, and the OpenAPI
security scheme. Installed by the app factory around everything but the latency timer.

With EVENTAPI_API_KEYS set, a request must carry one of the keys, as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, when it is

- a write: any method but GET, HEAD and OPTIONS, on any path (even one that does not
  exist, so a caller without a key learns nothing about the routes);
- a read (GET, HEAD, OPTIONS) and EVENTAPI_PUBLIC_READS=false, on any path but /health and
  the documentation (/docs, /docs/oauth2-redirect, /redoc, /openapi.json, and the pages'
  files under /docs/assets/), which a load balancer and a person with no key yet must
  reach. /metrics is a read like the events: it is private too.

Without a key, or with a wrong one, the answer is 401 problem+json with
``WWW-Authenticate: Bearer``, sent before the body is read. Only SHA-256 digests of the
keys are held (settings.ApiKeys); a presented key is hashed and compared with every digest
with hmac.compare_digest, all of them every time, so neither the timing nor the key that
matched leaks. No key, configured or presented, is ever logged.

Without keys the API is open to anyone: start-up says so in one warning line, and
EVENTAPI_ENV=production refuses to start (AccessRefused, raised by install_access).

Order, outermost first: CORS (only with EVENTAPI_CORS_ORIGINS) -> key check (only with
keys) -> the rest of the app. A browser's preflight carries no key, so CORS answers it
before the key check; and a 401 passes back through CORS, so the page can read it. With
public reads the key check costs a read one set lookup of its method.

X-Forwarded-For/-Proto are not handled here: the server honours them only from the peers
in EVENTAPI_TRUSTED_PROXIES (cli.serve configures uvicorn so).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.http.problems import PROBLEM_JSON, problem_response
from eventapi.settings import ApiKeys, Settings, key_digest

log = logging.getLogger("eventapi")

READS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ALWAYS_PUBLIC = ("/health",)
BEARER = b"bearer "
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "An API key as a token"}
API_KEY_SCHEME = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
CORS_HEADERS = (
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
)
CORS_EXPOSED = (
    "ETag",
    "X-Cache",
    "X-Total-Count",
    "Link",
    "Location",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
)
OPEN_WARNING = "no EVENTAPI_API_KEYS set: anyone can create, change and delete events"


class AccessRefused(RuntimeError):
    """The settings would serve an API that must not be served (production, no keys)."""


class ApiKeyMiddleware:
    """401 for a request that needs a key and has none of the configured ones."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, public_reads: bool, public: PublicPaths):
        self.app = app
        self.digests = keys.digests
        # Methods that pass without a look at anything else.
        self.open_methods = READS if public_reads else frozenset[str]()
        # Paths a read may reach without a key when reads are private.
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if (
            method in self.open_methods
            or scope["type"] != "http"
            or (method in READS and scope["path"] in self.public)
            or self._authorised(scope)
        ):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, receive, send)

    def _authorised(self, scope: Scope) -> bool:
        presented: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == BEARER:
                presented.append(value[7:].strip())
            elif name == b"x-api-key":
                presented.append(value.strip())
        matched = 0
        # At most two candidates (a client may send both headers), each compared with every
        # configured digest: no early exit.
        for key in presented[:2]:
            digest = key_digest(key)
            for known in self.digests:
                matched |= hmac.compare_digest(digest, known)
        return bool(matched)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        has_key = any(
            name == b"x-api-key" or (name == b"authorization" and value[:7].lower() == BEARER)
            for name, value in scope["headers"]
        )
        detail = (
            "The API key is not valid"
            if has_key
            else "This request needs an API key: send 'Authorization: Bearer <key>' "
            "or 'X-API-Key: <key>'"
        )
        response = problem_response(
            401,
            detail,
            slug="unauthorized",
            title="Unauthorized",
            instance=scope["path"],
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


@dataclass(frozen=True, slots=True)
class PublicPaths:
    """``path in public``: the path is one of ``exact`` or lies under one of ``prefixes``
    (each ends with "/", so /docs/assets/ covers /docs/assets/x, not /docs/assetsx)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def __contains__(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)


def public_paths(app: FastAPI) -> PublicPaths:
    """The paths that never need a key and are never rate-limited: health, the docs pages
    and the files they load (http/docs.py)."""
    docs = (app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url, app.openapi_url)
    exact = frozenset(url for url in (*ALWAYS_PUBLIC, *docs) if url)
    # A prefix opens no more than the files: below it only StaticFiles answers, from its
    # directory (a path whose ".." climbs out of it is a 404, never another route).
    assets: str | None = getattr(app.state, "docs_assets_url", None)
    return PublicPaths(exact, (assets.rstrip("/") + "/",) if assets else ())


def install_access(app: FastAPI, settings: Settings) -> None:
    """Add the access-control layers to ``app`` (outside the item fast path).

    Raises AccessRefused when the settings must not serve (production without keys)."""
    refusal = settings.refusal()
    if refusal is not None:
        raise AccessRefused(refusal)
    keys = settings.api_keys
    if keys:
        public = public_paths(app)
        app.add_middleware(
            ApiKeyMiddleware, keys=keys, public_reads=settings.public_reads, public=public
        )
        document_security(app, settings.public_reads, public)
    else:
        extra = " (and read them: EVENTAPI_PUBLIC_READS=false needs keys)"
        log.warning("%s%s", OPEN_WARNING, "" if settings.public_reads else extra)
    origins = settings.cors_origin_list
    if origins:
        # Added last: outermost, so a preflight is answered before the key check.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            allow_credentials=False,
        )


def document_security(app: FastAPI, public_reads: bool, public: PublicPaths) -> None:
    """In the OpenAPI document: the two ways to send a key (so Swagger UI has an Authorize
    button), which operations need one, and their 401. Wraps app.openapi like
    problems.document_problem_responses does (that one stays in the chain)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(
            bearerAuth=BEARER_SCHEME, apiKeyHeader=API_KEY_SCHEME
        )
        unauthorised = {
            "description": "Missing or invalid API key",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():  # FastAPI: operations only
                if method.upper() in READS and (public_reads or path in public):
                    continue
                operation["security"] = SECURITY
                operation.setdefault("responses", {})["401"] = unauthorised
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
