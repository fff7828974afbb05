"""The interactive documentation, Swagger UI at /docs and ReDoc at /redoc, served with the
package's own copies of their scripts, styles and icon (docs_assets/, see VENDORED.md).

FastAPI's own pages load all of that from public CDNs (and ReDoc's fonts from Google), so
on a machine without internet they are blank, and anywhere else each visit tells those
hosts who reads the docs. These pages make no request to any host but this server. The
URLs are FastAPI's (/docs, /docs/oauth2-redirect, /redoc); the files are under
/docs/assets/, which access.PUBLIC counts as public like the pages themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"  # FastAPI's swagger_ui_oauth2_redirect_url
ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(__file__).with_name("docs_assets")
SWAGGER_JS = "swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui/swagger-ui.css"
REDOC_JS = "redoc/redoc.standalone.js"
FAVICON = "swagger-ui/favicon-32x32.png"
# The pages' Content-Security-Policy: whatever a bundled script asks for elsewhere, the
# browser does not send. ReDoc 2 always shows Redocly's logo from cdn.redoc.ly in its menu
# (and hides it when it does not load). 'unsafe-inline': FastAPI's pages start the UIs with
# an inline script, and both UIs inject their styles; blob: is the worker ReDoc searches in.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:"
)
# Swagger UI's default validator is a public service; its badge is not shown by the layout
# FastAPI uses, but nothing on the page should ever name an outside host to call.
SWAGGER_PARAMETERS: dict[str, Any] = {"validatorUrl": None}


def install_docs(app: FastAPI, docs_url: str = DOCS_URL, redoc_url: str = REDOC_URL) -> None:
    """Serve the documentation pages and their files on ``app``, which must be built with
    ``docs_url=None, redoc_url=None`` (or FastAPI registers its CDN pages first).

    Sets ``app.docs_url`` and ``app.redoc_url`` to where the pages are."""
    if app.openapi_url is None:
        raise ValueError("the documentation pages need app.openapi_url")
    openapi_url = app.openapi_url
    app.docs_url = docs_url
    app.redoc_url = redoc_url
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    redirect_url = app.swagger_ui_oauth2_redirect_url
    parameters = {**SWAGGER_PARAMETERS, **(app.swagger_ui_parameters or {})}

    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that mounts the app under a prefix, every URL the page uses is
        # under it too (FastAPI does the same for the OpenAPI URL).
        root = request.scope.get("root_path", "").rstrip("/")
        return _confined(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
                swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
                swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
                oauth2_redirect_url=root + redirect_url if redirect_url else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=parameters,
            )
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _confined(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_JS}",
                redoc_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
                with_google_fonts=False,
            )
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return _confined(get_swagger_ui_oauth2_redirect_html())

    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page
