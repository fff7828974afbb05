"""The documentation pages' own files (http/docs.py), in process and without a browser:
the pages name no other host, every file they load is served from the package, and the
files are as public as the pages (no key, no rate limit) without opening anything else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from eventapi.http.docs import ASSETS_DIR, ASSETS_URL, install_docs
from eventapi.settings import Settings
from tests.docs.server import KEY
from tests.support.app import run_app
from tests.support.settings import app_settings

PAGES = ("/docs", "/redoc")
LINKED = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def settings(tmp_path: Path, public_reads: bool = True, rate_limit: str = "") -> Settings:
    return app_settings(tmp_path, api_keys=KEY, public_reads=public_reads, rate_limit=rate_limit)


@pytest.fixture
async def locked(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Reads need a key, and each client may send one request a minute."""
    locked = settings(tmp_path, public_reads=False, rate_limit="1/minute")
    async with run_app(locked) as running:
        yield running.http


async def linked_files(http: httpx.AsyncClient, page: str) -> list[str]:
    response = await http.get(page)
    assert response.status_code == 200
    return LINKED.findall(response.text)


@pytest.mark.parametrize("page", PAGES)
async def test_a_page_loads_only_files_of_the_package(tmp_path: Path, page: str) -> None:
    async with run_app(settings(tmp_path)) as running:
        http = running.http
        files = await linked_files(http, page)

        assert files, "the page links no file"
        assert all(url.startswith(ASSETS_URL + "/") for url in files), files
        for url in files:
            response = await http.get(url)
            assert response.status_code == 200, url
            assert (
                response.content == (ASSETS_DIR / url.removeprefix(ASSETS_URL + "/")).read_bytes()
            )
        text = (await http.get(page)).text
        assert "http://" not in text
        assert "https://" not in text  # no CDN, no Google fonts


async def test_behind_a_path_prefix_the_files_are_under_it_too(tmp_path: Path) -> None:
    # A proxy serving the API under /events-api passes root_path: the page must ask for
    # /events-api/docs/assets/..., or the proxy would not route it here.
    async with (
        run_app(settings(tmp_path)) as running,
        running.client(root_path="/events-api") as http,
    ):
        for page in PAGES:
            files = await linked_files(http, page)
            assert all(url.startswith(f"/events-api{ASSETS_URL}/") for url in files), files


async def test_pages_forbid_loading_from_other_hosts(tmp_path: Path) -> None:
    async with run_app(settings(tmp_path)) as running:
        http = running.http
        for page in (*PAGES, "/docs/oauth2-redirect"):
            policy = (await http.get(page)).headers["content-security-policy"]
            assert "default-src 'self'" in policy
            assert "http" not in policy  # no host is named, by scheme or otherwise


async def test_files_need_no_key_and_count_against_no_limit(locked: httpx.AsyncClient) -> None:
    files = await linked_files(locked, "/docs") + await linked_files(locked, "/redoc")
    for url in files * 2:
        assert (await locked.get(url)).status_code == 200, url
        assert (await locked.head(url)).status_code == 200, url
    # The key and the limit are on for everything else.
    assert (await locked.get("/api/events")).status_code == 401
    assert (await locked.get("/api/events", headers={"X-API-Key": KEY})).status_code == 200
    assert (await locked.get("/api/events", headers={"X-API-Key": KEY})).status_code == 429


async def test_the_public_prefix_opens_nothing_else(locked: httpx.AsyncClient) -> None:
    # Only below /docs/assets/, only reads, and only the files there.
    assert (await locked.get(f"{ASSETS_URL}x/redoc/LICENSE")).status_code == 401
    assert (await locked.post(f"{ASSETS_URL}/redoc/LICENSE")).status_code == 401
    escape = f"{ASSETS_URL}/%2e%2e/docs.py"  # ../docs.py, the module beside the directory
    assert (await locked.get(escape)).status_code == 404
    assert (await locked.get(f"{ASSETS_URL}/nothing.js")).status_code == 404


def test_the_pages_need_the_openapi_document() -> None:
    with pytest.raises(ValueError, match="openapi_url"):
        install_docs(FastAPI(openapi_url=None, docs_url=None, redoc_url=None))


async def test_without_an_oauth2_redirect_url_none_is_served() -> None:
    app = FastAPI(docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    install_docs(app)
    async with run_app(app=app, lifespan=False) as running:
        http = running.http
        assert "oauth2RedirectUrl" not in (await http.get("/docs")).text
        assert (await http.get("/docs/oauth2-redirect")).status_code == 404
