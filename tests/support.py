"""Helpers for tests that drive the HTTP API."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid

import httpx
from sanic_testing.testing import ASGI_HOST, ASGI_PORT, SanicASGITestClient, TestingResponse

from channels import sessions
from infra.actors import Actor
from server.demo_data import DEMO_PASSWORD


async def staff_token(client, username: str) -> str:
    _, response = await client.post("/api/v1/staff/login", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status == 200, response.text
    return response.json["access_token"]


async def customer_token(app, customer_id: int, bank_id: int | None, channel: str = "wechat_miniprogram") -> str:
    """Customers sign in through channels; these tests need only a valid session for one."""
    pair = await sessions.start_session(
        Actor(kind="customer", id=customer_id, bank_id=bank_id, channel=channel), channel=channel, policy=app.ctx.token_policy
    )
    return pair.access_token


def bearer(token: str, **extra: str) -> dict:
    return {"Authorization": f"Bearer {token}", **extra}


def new_key() -> str:
    return uuid.uuid4().hex


class StartedOnceClient(SanicASGITestClient):
    """Sanic's ASGI test client, but the app is started once rather than around every request
    (sanic-testing re-runs the start-up and shut-down events per request: ~40 ms each)."""

    def __init__(self, app):
        super().__init__(app)
        self._started = False

    async def request(self, method, url, gather_request=True, *args, **kwargs):
        if not self._started:
            app = self.sanic_app
            app.router.reset()
            app.signal_router.reset()
            await app._startup()
            await app._server_event("init", "before")
            await app._server_event("init", "after")
            self._started = True
        if not url.startswith(("http:", "https:")):
            url = f"http://{ASGI_HOST}:{ASGI_PORT}{url if url.startswith('/') else '/' + url}"
        response = await httpx.AsyncClient.request(self, method, url, *args, **kwargs)
        response.__class__ = TestingResponse
        return None, response

    async def stop(self) -> None:
        if self._started:
            await self.sanic_app._server_event("shutdown", "before")
            await self.sanic_app._server_event("shutdown", "after")
        await self.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, process, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {seconds} s")


class StaffConsole:
    """Staff members using the API: each signs in once, then makes requests as themselves."""

    def __init__(self, client):
        self.client = client
        self._tokens: dict[str, str] = {}

    async def headers(self, username: str) -> dict:
        if username not in self._tokens:
            self._tokens[username] = await staff_token(self.client, username)
        return bearer(self._tokens[username])

    async def get(self, username: str, path: str):
        _, response = await self.client.get(path, headers=await self.headers(username))
        return response

    async def post(self, username: str, path: str, body: dict | None = None):
        _, response = await self.client.post(path, json=body if body is not None else {}, headers=await self.headers(username))
        return response


@contextlib.contextmanager
def fake_wechat_process():
    """A fake WeChat server (fakes.wechat) in a process of its own; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "fakes.wechat", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def openapi_document(settings, redis):
    """(app, document): the OpenAPI document of an app of the caller's own. sanic-ext keeps one
    specification per process, documented for the app that started last, so a test reading the
    document starts its own app rather than trust whichever other tests started before."""
    from server.app import create_app

    app = create_app(settings, name=f"oas_{uuid.uuid4().hex[:10]}", redis=redis, manage_database=False)
    client = StartedOnceClient(app)
    try:
        _, response = await client.get("/docs/openapi.json")
    finally:
        await client.stop()
    assert response.status == 200, response.text
    return app, response.json
