"""The staff console in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against a live backend started once for these tests (``python -m server.cli serve``
after ``migrate`` and ``demo``, as `make run` does).

The backend (tests/live.py) gets a store of its own, named ``console``. Each test creates what it
needs through the API (``live.post(...)``, ``live.customer(...)``) and then works in the browser
as a member of staff would. Screenshots of the pages go to ``var/screenshots/console``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.demo_data import DEMO_PASSWORD
from tests.live import ROOT, LiveBackend, running_backend

SCREENSHOTS = ROOT / "var" / "screenshots" / "console"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INSTALL_HINT = "Chromium is not installed, so the console's browser tests are skipped: apt-get install -y chromium"

# What NOTES.md says headless Chromium needs on these machines (running as root, no GPU, no network of its own).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason=INSTALL_HINT)
    for item in items:
        if "tests/console" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> LiveBackend:
    with running_backend(tmp_path_factory.mktemp("console"), "console") as backend:
        yield backend


# One browser per test module, not per session: Playwright's sync API holds an event loop of its
# own while it runs, and the suite's async tests (pytest-asyncio) cannot run beside it.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Console:
    """One staff member's browser tab on the console. ``errors`` collects what the page's scripts
    threw or logged as errors (a test ends by asserting there were none)."""

    def __init__(self, browser, live: LiveBackend):
        self.live = live
        self.context = browser.new_context(base_url=live.base_url, viewport={"width": 1366, "height": 900}, locale="zh-CN")
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console_message)

    def _console_message(self, message) -> None:
        # A refused request is logged by Chromium itself ("Failed to load resource"); tests that
        # expect refusals assert on what the page shows instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def sign_in(self, username: str, next_page: str | None = None) -> "Console":
        self.page.goto("/console/" + (f"index.html?next={next_page}" if next_page else ""))
        form = self.page.get_by_test_id("sign-in")
        form.locator("input[name=username]").fill(username)
        form.locator("input[name=password]").fill(DEMO_PASSWORD)
        form.get_by_role("button", name="登录").click()
        self.page.get_by_test_id("who").wait_for()
        return self

    def open(self, page_name: str) -> "Console":
        self.page.goto(f"/console/{page_name}")
        self.page.get_by_test_id("who").wait_for()
        return self

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console(browser, live):
    """console("hz.marketer") → a signed-in tab; every tab opened in the test is closed after it,
    and the test fails if a page's script threw or logged an error."""
    opened: list[Console] = []

    def open_as(username: str, next_page: str | None = None) -> Console:
        tab = Console(browser, live)
        opened.append(tab)
        return tab.sign_in(username, next_page)

    yield open_as
    errors = [error for tab in opened for error in tab.errors]
    for tab in opened:
        tab.close()
    assert not errors, f"the console's scripts reported errors: {errors}"
