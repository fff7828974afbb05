"""Headless Debian Chromium driven by Selenium for the documentation tests.

The browser and its driver are named explicitly, so Selenium Manager never runs and
nothing is downloaded. Every request a page makes is read from Chrome's performance log
(the DevTools network events), and every step can leave a screenshot.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver import Chrome as ChromeDriver
from selenium.webdriver import ChromeOptions
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By as By
from selenium.webdriver.remote.webelement import WebElement as WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.docs.availability import CHROMEDRIVER, CHROMIUM

T = TypeVar("T")

WAIT = 20.0  # seconds for any one thing to show up on a page
IGNORED = (NoSuchElementException, StaleElementReferenceException)
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",  # root in a container: Chromium's sandbox cannot start
    "--disable-dev-shm-usage",  # containers' small /dev/shm crashes tabs
    "--no-proxy-server",  # a proxy from the environment would be a host other than ours
    "--window-size=1366,1600",
    # Chromium's own background traffic (updates, sync...) is not the page's, but off it goes.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
)


@dataclass
class Request:
    url: str
    status: int | None = None  # of the response, once one arrived
    blocked: str | None = None  # why the browser itself did not send it (e.g. "csp")


def origin(url: str) -> str:
    parts = urlsplit(url.removeprefix("blob:"))  # a blob: URL carries its page's origin
    return f"{parts.scheme}://{parts.netloc}"


@contextmanager
def started(shots: Sequence[Path]) -> Iterator[Chrome]:
    """A browser (a test module's fixture), quit at the end."""
    browser = Chrome(shots)
    try:
        yield browser
    finally:
        browser.quit()


class Chrome:
    """One browser for a test module; ``shots`` are the directories screenshots go to."""

    def __init__(self, shots: Sequence[Path]) -> None:
        options = ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ARGUMENTS:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = ChromeDriver(service=Service(str(CHROMEDRIVER)), options=options)
        # Every page load is a first visit: each one fetches (and is checked for) all its
        # files, whatever an earlier test loaded.
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        self.shots = list(shots)
        self._taken = 0
        self._requests: list[Request] = []
        self._latest: dict[str, Request] = {}  # by DevTools request id
        self._console: list[dict[str, Any]] = []

    def quit(self) -> None:
        self.driver.quit()

    def forget(self) -> None:
        """Start afresh: what the pages requested and logged so far is dropped."""
        self.requests()
        self.console_errors()
        self._requests.clear()
        self._latest.clear()
        self._console.clear()

    def open(self, url: str) -> None:
        self.driver.get(url)

    def wait(self, condition: Callable[[ChromeDriver], T | None], what: str) -> T:
        """Wait until ``condition`` returns something other than None or False; on time-out,
        fail with ``what``, a screenshot and the page's console errors."""
        try:
            # A page redrawn while a condition looks at it: look again.
            waiting = WebDriverWait(self.driver, WAIT, ignored_exceptions=IGNORED)
            found: T = waiting.until(lambda d: condition(d) or False)
        except TimeoutException:
            shot = self.screenshot(f"timeout-{what}")
            errors = self.console_errors()
            raise AssertionError(
                f"not within {WAIT}s: {what} (screenshot {shot}; console errors {errors})"
            ) from None
        return found

    def element(self, css: str, within: WebElement | None = None) -> WebElement:
        """The first element matching ``css`` once it is displayed."""

        def shown(_: ChromeDriver) -> WebElement | None:
            try:
                found = (within or self.driver).find_element(By.CSS_SELECTOR, css)
                return found if found.is_displayed() else None
            except WebDriverException:  # not there yet, or replaced while we looked
                return None

        return self.wait(shown, css)

    def click(self, css: str, within: WebElement | None = None) -> WebElement:
        found = self.element(css, within)
        found.click()
        return found

    def scroll_to(self, element: WebElement) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the window in every screenshot directory; returns the first."""
        self._taken += 1
        safe = re.sub(r"[^\w.-]+", "-", name).strip("-")
        first = self.shots[0] / f"{self._taken:02d}-{safe}.png"
        self.driver.save_screenshot(str(first))
        for directory in self.shots[1:]:
            shutil.copy(first, directory / first.name)
        return first

    def requests(self) -> list[Request]:
        """Every request the pages made so far (Chrome's log is drained, so it is kept)."""
        for entry in self._log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message.get("params", {})
            latest = self._latest.get(params.get("requestId", ""))
            if method == "Network.requestWillBeSent":
                if latest is not None and "redirectResponse" in params:
                    latest.status = params["redirectResponse"]["status"]
                request = Request(params["request"]["url"])
                self._requests.append(request)
                # A redirect goes on under the same id: the new URL is the one that answers.
                self._latest[params["requestId"]] = request
            elif method == "Network.responseReceived" and latest is not None:
                latest.status = params["response"]["status"]
            elif method == "Network.loadingFailed" and latest is not None:
                latest.blocked = params.get("blockedReason")
        return list(self._requests)

    def console_errors(self) -> list[str]:
        """The page's SEVERE console messages so far."""
        self._console += self._log("browser")
        return [entry["message"] for entry in self._console if entry["level"] == "SEVERE"]

    def _log(self, kind: str) -> list[dict[str, Any]]:
        """Chrome's ``kind`` log since the last call (Selenium leaves get_log unannotated)."""
        entries: list[dict[str, Any]] = self.driver.get_log(kind)  # type: ignore[no-untyped-call]
        return entries
