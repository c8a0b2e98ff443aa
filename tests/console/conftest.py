"""The staff console in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against a live backend started once for these tests (``python -m server.cli serve``
after ``migrate`` and ``demo``, as `make run` does).

The backend gets a store of its own: a temporary SQLite file, or on PostgreSQL a database named
after the suite's with ``_console`` appended, and on real Redis a key prefix of its own. Each test
creates what it needs through the API (``live.staff(...)``, ``live.post(...)``) and then works in
the browser as a member of staff would. Screenshots of the pages go to ``var/screenshots/console``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from server.demo_data import DEMO_PASSWORD
from tests.support import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
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


def _backend_env(tmp: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX")}
    env.update(
        APP_ENV="dev",
        PORT=str(port),
        LOG_JSON="true",
        NOTARY_DIR=str(tmp / "notary"),
        # A fake WeChat of its own on a free port (serve starts it), whatever else runs on 8101.
        WECHAT_API_BASE=f"http://127.0.0.1:{free_port()}/",
    )
    suite_database = os.environ.get("DATABASE_URL", "")
    if suite_database.startswith("postgres"):
        env["DATABASE_URL"] = suite_database.rstrip("/") + "_console"
    else:
        env["DATABASE_URL"] = f"sqlite://{tmp}/console.sqlite3"
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
        env["REDIS_KEY_PREFIX"] = f"console:{uuid.uuid4().hex[:10]}:"
    return env


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"server.cli {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


class LiveBackend:
    """The running backend, and staff and customers using its API directly to set up a test."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self._tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self._tokens:
            response = self.http.post("/api/v1/staff/login", json={"username": username, "password": DEMO_PASSWORD})
            response.raise_for_status()
            self._tokens[username] = response.json()["access_token"]
        return self._tokens[username]

    def headers(self, token: str) -> dict:
        return {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}

    def get(self, username: str, path: str, **params) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.headers(self.token(username)))

    def post(self, username: str, path: str, body: dict | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {}, headers=self.headers(self.token(username)))

    def put(self, username: str, path: str, body: dict | None = None) -> httpx.Response:
        return self.http.put(path, json=body or {}, headers=self.headers(self.token(username)))

    def bank_id(self, code: str) -> int:
        return next(b["id"] for b in self.http.get("/api/v1/banks").json()["items"] if b["code"] == code)

    def customer(self, *, name: str, id_number: str, phone: str, bank_code: str, scene: str | None = None) -> "LiveCustomer":
        """A customer through the mini-program's door: WeChat login (with an invite code as its
        scene, if any), the bank, the phone and the real name — ready to quote and apply."""
        login = {"code": f"console-{uuid.uuid4().hex[:12]}.1", "device_id": uuid.uuid4().hex}
        if scene:
            login["scene"] = scene
        response = self.http.post("/api/v1/channels/wechat/login", json=login)
        response.raise_for_status()
        customer = LiveCustomer(self, response.json()["access_token"])
        if not response.json().get("bank_id"):
            customer.post("/api/v1/me/bank", {"bank_id": self.bank_id(bank_code)}).raise_for_status()
        customer.post("/api/v1/channels/wechat/phone", {"code": f"{phone}.1"}).raise_for_status()
        customer.post("/api/v1/me/real-name", {"name": name, "id_number": id_number, "phone": phone}).raise_for_status()
        return customer

    def cli(self, *args: str) -> str:
        """A ``python -m server.cli`` command against this backend's database (a daily run, a risk batch)."""
        return _cli(self.env, *args)


class LiveCustomer:
    def __init__(self, live: LiveBackend, token: str):
        self.live = live
        self.token = token

    def get(self, path: str, **params) -> httpx.Response:
        return self.live.http.get(path, params=params, headers=self.live.headers(self.token))

    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return self.live.http.post(path, json=body or {}, headers=self.live.headers(self.token))


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> LiveBackend:
    tmp = tmp_path_factory.mktemp("console")
    port = free_port()
    env = _backend_env(tmp, port)
    if env["DATABASE_URL"].startswith("postgres"):
        subprocess.run(
            [sys.executable, "-c", "import asyncio, sys; from server import database; asyncio.run(database.recreate_postgres_database(sys.argv[1]))", env["DATABASE_URL"]],
            cwd=ROOT, check=True, timeout=60,
        )
    _cli(env, "migrate")
    _cli(env, "demo")
    log = (tmp / "backend.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, server, seconds=60)
        backend = LiveBackend(f"http://127.0.0.1:{port}")
        backend.env = env
        backend.log_path = tmp / "backend.log"
        yield backend
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="session")
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
