"""Headless Chromium (Debian's package, driven by Playwright) against a real ``xnatd serve``.

Playwright's own browser download does not work offline, so the tests launch ``/usr/bin/chromium``
(``make install-system`` installs it). Screenshots go to a ``screenshots`` folder under pytest's
temporary directory; ``XNATD_SCREENSHOTS=DIR`` also saves smaller copies there (how docs/screenshots/
is made).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.live_server import LiveServer, live_server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]
LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while it is
    open, and later tests that call ``asyncio.run`` must not find it there."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make install-system` installs Debian's chromium package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("web") / "data") as srv:
        yield srv


@pytest.fixture
def admin_http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


class Shots:
    """Saves full-page screenshots under the test's temporary folder (and XNATD_SCREENSHOTS)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.extra = Path(os.environ["XNATD_SCREENSHOTS"]) if os.environ.get("XNATD_SCREENSHOTS") else None

    def take(self, page: Page, name: str, full_page: bool = True) -> Path:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if self.extra is not None:  # for the docs: 128 colours make a page's picture 3 to 4 times smaller
            self.extra.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                small = image.convert("RGB").quantize(128, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                small.save(self.extra / path.name, optimize=True)
        return path


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Shots:
    return Shots(tmp_path_factory.mktemp("screenshots"))


def login(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url + "/app/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/app/projects")


@pytest.fixture
def admin_page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = context.new_page()
    login(page, server.url, "admin", "admin")
    try:
        yield page
    finally:
        context.close()
