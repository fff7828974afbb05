"""The interactive documentation in headless Chromium, against a real `eventapi serve`
with an API key and the sample events: Swagger UI runs a read, and a write once the key is
entered under Authorize; ReDoc lists every operation of the OpenAPI document; and no page
asks any host but the server for anything (without internet, a page that needed a CDN
would stay blank, as FastAPI's own pages do).

Each step leaves a screenshot in pytest's temporary directory (``screenshots0`` of the
run's basetemp) and, when $EVENTAPI_SCREENSHOTS names a directory, there too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docs.availability import require_browser
from tests.docs.server import KEY, docs_server
from tests.support.server import Server

require_browser()  # skips (or under CI fails) before Selenium is imported

from tests.docs.chrome import By, Chrome, Request, WebElement, origin, started  # noqa: E402

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

NEW_EVENT = {
    "title": "Offline Docs Workshop",
    "description": "Created from Swagger UI in a browser with no internet",
    "date": "2026-03-14T09:30:00",
    "location": "Lisbon, Portugal",
    "category": "Tech",
    "organizer": "eventapi tests",
}
SAMPLE_TITLES = {  # some of `eventapi seed --insert-samples`, all on the first page
    "Tech Conference 2025",
    "Music Festival",
    "Jazz in the Park",
    "Street Food & Wine Evening",
}
# The Authorize dialog has a form per security scheme: the key goes in the X-API-Key one
# (apiKeyHeader, http/access.py).
API_KEY_FORM = "//form[.//code[text()='apiKeyHeader']]"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def browser(screenshots: list[Path]) -> Iterator[Chrome]:
    with started(screenshots) as browser:
        yield browser


@pytest.fixture
def chrome(browser: Chrome) -> Chrome:
    """The module's browser, with what earlier tests requested forgotten."""
    browser.forget()
    return browser


def operations(server: Server) -> set[tuple[str, str, str, str]]:
    """(method, path, operationId, summary) of every operation in /openapi.json."""
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json", trust_env=False).json()
    return {
        (method, path, operation["operationId"], operation["summary"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def assert_stayed_on(chrome: Chrome, server: Server) -> None:
    """Every request the pages made went to the server, and none of them failed.

    One the browser refused to send because of the page's Content-Security-Policy never
    left it (ReDoc's Redocly logo, http/docs.py), so it does not count as made."""
    requests = chrome.requests()
    sent = [request for request in requests if request.blocked != "csp"]
    elsewhere = [r.url for r in sent if not r.url.startswith("data:") and not home(r, server)]
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    assert any(r.url.startswith(f"{server.url}/docs/assets/") for r in sent), "nothing logged?"
    failed = [(r.url, r.status) for r in sent if r.status is not None and r.status >= 400]
    assert failed == []
    errors = [e for e in chrome.console_errors() if "Content Security Policy" not in e]
    assert errors == []


def home(request: Request, server: Server) -> bool:
    return origin(request.url) == server.url


def operation_block(chrome: Chrome, operation_id: str) -> WebElement:
    """Swagger UI's block of one operation, expanded."""
    block = chrome.element(f"#operations-events-{operation_id}")
    if "is-open" not in (block.get_attribute("class") or ""):
        chrome.click(".opblock-summary-control", within=block)
    chrome.element(".opblock-body", within=block)
    return block


def execute(chrome: Chrome, block: WebElement) -> tuple[int, Any]:
    """Press Execute in an operation already in "Try it out" mode; the status and body
    Swagger UI shows."""
    chrome.click("button.execute", within=block)
    status = chrome.element(".live-responses-table tbody .response .response-col_status", block)
    body = chrome.element(".live-responses-table tbody .response-col_description pre", block)
    chrome.scroll_to(chrome.element(".live-responses-table", within=block))
    return int(status.text.split()[0]), json.loads(body.get_attribute("textContent") or "")


def test_swagger_ui_lists_the_events(chrome: Chrome, server: Server) -> None:
    chrome.open(f"{server.url}/docs")
    chrome.wait(lambda d: d.title == "eventapi - Swagger UI", "the page title")
    block = operation_block(chrome, "listEvents")
    chrome.screenshot("docs-list-events-expanded")

    chrome.click("button.try-out__btn", within=block)
    status, body = execute(chrome, block)
    chrome.screenshot("docs-list-events-200")

    assert status == 200
    assert {event["title"] for event in body} >= SAMPLE_TITLES
    assert_stayed_on(chrome, server)


def test_swagger_ui_authorizes_and_creates_an_event(chrome: Chrome, server: Server) -> None:
    chrome.open(f"{server.url}/docs")
    chrome.click(".auth-wrapper button.authorize.unlocked")
    form = chrome.wait(lambda d: d.find_element(By.XPATH, API_KEY_FORM), "the X-API-Key form")
    chrome.element("input", within=form).send_keys(KEY)
    chrome.screenshot("docs-authorize-key-entered")
    chrome.click("button[type=submit]", within=form)
    # The form is drawn anew once authorized: look it up again.
    chrome.wait(lambda d: "Logout" in d.find_element(By.XPATH, API_KEY_FORM).text, "accepted")
    chrome.screenshot("docs-authorized")
    chrome.click("button.btn-done", within=chrome.driver.find_element(By.XPATH, API_KEY_FORM))
    chrome.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, ".modal-ux"), "the dialog closed")
    chrome.element(".auth-wrapper button.authorize.locked")

    block = operation_block(chrome, "createEvent")
    chrome.click("button.try-out__btn", within=block)
    editor = chrome.element("textarea.body-param__text", within=block)
    editor.clear()
    editor.send_keys(json.dumps(NEW_EVENT, indent=2))
    chrome.screenshot("docs-create-event-body")
    status, body = execute(chrome, block)
    chrome.screenshot("docs-create-event-201")

    assert status == 201, body
    assert {key: body[key] for key in NEW_EVENT} == NEW_EVENT
    stored = httpx.get(f"{server.url}/api/events/{body['id']}", trust_env=False)
    assert stored.status_code == 200
    assert stored.json() == body
    assert_stayed_on(chrome, server)


def test_redoc_lists_every_operation(chrome: Chrome, server: Server) -> None:
    expected = operations(server)
    chrome.open(f"{server.url}/redoc")
    chrome.wait(lambda d: d.title == "eventapi - ReDoc", "the page title")
    # ReDoc renders each operation as a section "tag/<tag>/operation/<operationId>" (plus
    # an anchor "operation/<operationId>"), with its summary and its method and path.
    script = """
        return Array.from(document.querySelectorAll('[data-section-id^="tag/"]'))
            .filter(section => section.dataset.sectionId.includes('/operation/'))
            .map(section => {
                const verb = section.querySelector('.http-verb');
                return [
                    verb ? verb.textContent : '',
                    verb ? verb.parentElement.textContent.slice(verb.textContent.length) : '',
                    section.dataset.sectionId.split('/operation/')[1],
                    section.querySelector('h2').textContent.trim(),
                ];
            });
    """

    def listed(driver: Any) -> set[tuple[str, str, str, str]] | None:
        found = {(str(a), str(b), str(c), str(d)) for a, b, c, d in driver.execute_script(script)}
        return found if len(found) >= len(expected) else None

    shown = chrome.wait(listed, f"{len(expected)} operations")
    chrome.screenshot("redoc")
    chrome.scroll_to(chrome.element('[data-section-id="tag/events/operation/createEvent"]'))
    chrome.screenshot("redoc-create-event")

    assert shown == expected
    assert_stayed_on(chrome, server)


def test_docs_are_public_when_reads_need_a_key(chrome: Chrome, tmp_path: Path) -> None:
    # The pages, the OpenAPI document and the files under /docs/assets/ need no key; the
    # events do.
    with docs_server(tmp_path, public_reads="false") as private:
        assert httpx.get(f"{private.url}/api/events", trust_env=False).status_code == 401
        chrome.open(f"{private.url}/docs")
        chrome.element("#operations-events-listEvents")
        chrome.screenshot("private-reads-docs")
        chrome.open(f"{private.url}/redoc")
        chrome.element('[data-section-id="tag/events/operation/listEvents"]')
        chrome.screenshot("private-reads-redoc")
        assert_stayed_on(chrome, private)
