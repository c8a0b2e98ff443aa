"""A live backend for tests that need a real server and a client in another process (the staff
console's browser tests, the API fuzzing): ``python -m server.cli serve`` after ``migrate`` and
``demo``, as `make run` does, on a store of its own — a temporary SQLite file, or on PostgreSQL
the suite's database name with ``_<name>`` appended, and on real Redis a key prefix of its own.
``LiveBackend`` lets staff and customers use its API directly to set up what a test needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from server.demo_data import DEMO_PASSWORD
from tests.support import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[1]


def backend_env(tmp: Path, port: int, name: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX")}
    env.update(
        APP_ENV="dev",
        PORT=str(port),
        LOG_JSON="true",
        NOTARY_DIR=str(tmp / "notary"),
        # The data sandboxes answer in milliseconds, but a loaded CI machine can stall them past
        # the production timeout, which would turn an approval into a manual review.
        DATA_SOURCE_TIMEOUT_MS="30000",
        # A fake WeChat of its own on a free port (serve starts it), whatever else runs on 8101.
        WECHAT_API_BASE=f"http://127.0.0.1:{free_port()}/",
    )
    suite_database = os.environ.get("DATABASE_URL", "")
    if suite_database.startswith("postgres"):
        env["DATABASE_URL"] = suite_database.rstrip("/") + f"_{name}"
    else:
        env["DATABASE_URL"] = f"sqlite://{tmp}/{name}.sqlite3"
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
        env["REDIS_KEY_PREFIX"] = f"{name}:{uuid.uuid4().hex[:10]}:"
    return env


def cli(env: dict, *args: str) -> str:
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
            customer.step("/api/v1/me/bank", {"bank_id": self.bank_id(bank_code)})
        customer.step("/api/v1/channels/wechat/phone", {"code": f"{phone}.1"})
        customer.step("/api/v1/me/real-name", {"name": name, "id_number": id_number, "phone": phone})
        return customer

    def cli(self, *args: str) -> str:
        """A ``python -m server.cli`` command against this backend's database (a daily run, a risk batch)."""
        return cli(self.env, *args)


class LiveCustomer:
    def __init__(self, live: LiveBackend, token: str):
        self.live = live
        self.token = token

    def get(self, path: str, **params) -> httpx.Response:
        return self.live.http.get(path, params=params, headers=self.live.headers(self.token))

    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return self.live.http.post(path, json=body or {}, headers=self.live.headers(self.token))

    def apply(self, product_code: str, *, amount_yuan: int = 50_000, term_months: int = 12, repayment_method: str = "equal_instalment") -> dict:
        """Consent to what the product needs and apply; the application as the API answers (201)."""
        product = self.get(f"/api/v1/products/{product_code}")
        assert product.status_code == 200, product.text
        for purpose in product.json()["consents_needed"]:
            consent = self.post("/api/v1/me/consents", {"purpose": purpose})
            assert consent.status_code == 201, consent.text
        applied = self.post(
            "/api/v1/applications",
            {"product_code": product_code, "amount_yuan": amount_yuan, "term_months": term_months, "repayment_method": repayment_method},
        )
        assert applied.status_code == 201, applied.text
        return applied.json()

    def step(self, path: str, body: dict) -> None:
        """A sign-up step; the ones that answer with a new session (choosing the bank) replace the token."""
        response = self.post(path, body)
        response.raise_for_status()
        self.token = response.json().get("access_token", self.token)


def _wait_until_healthy(backend: "LiveBackend", server, seconds: float = 180) -> None:
    """The port opens before the worker answers; on a busy machine its first answer has taken
    over 30 s, longer than a page load may wait."""
    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the backend exited with {server.returncode}: see {backend.log_path}")
        try:
            if backend.http.get("/healthz", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the backend did not answer /healthz within {seconds} s")
        time.sleep(0.5)


@contextlib.contextmanager
def running_backend(tmp: Path, name: str, **settings: str):
    """Migrate, load the demo data and serve, as `make run` does, on a store named ``name``
    (extra settings as environment variables); yields the LiveBackend and stops it with Ctrl-C."""
    port = free_port()
    env = {**backend_env(tmp, port, name), **settings}
    if env["DATABASE_URL"].startswith("postgres"):
        subprocess.run(
            [sys.executable, "-c", "import asyncio, sys; from server import database; asyncio.run(database.recreate_postgres_database(sys.argv[1]))", env["DATABASE_URL"]],
            cwd=ROOT, check=True, timeout=60,
        )
    cli(env, "migrate")
    cli(env, "demo")
    log = (tmp / "backend.log").open("wb")
    # A session of its own, so that the fake WeChat it starts goes with it whatever happens.
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until_listening(port, server, seconds=60)
        backend = LiveBackend(f"http://127.0.0.1:{port}")
        backend.env = env
        backend.log_path = tmp / "backend.log"
        _wait_until_healthy(backend, server)
        yield backend
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the server stops its fake WeChat itself
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()
