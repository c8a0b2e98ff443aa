"""What `make run` does, done for real: migrate, load the demo data twice, serve, stop on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(APP_ENV="dev", DATABASE_URL=f"sqlite://{tmp_path}/app.sqlite3", PORT=str(port))
    return env


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_migrate_demo_serve_and_stop(tmp_path):
    port = _free_port()
    env = _env(tmp_path, port)
    _cli(env, "migrate")
    first = json.loads(_cli(env, "demo").stdout)
    second = json.loads(_cli(env, "demo").stdout)
    assert first["banks"] == 3 and first["staff"] > 0
    assert set(second.values()) == {0}, "loading the demo data twice must change nothing"

    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not come up"
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.2)
        assert status == 200
        assert json.loads(body) == {"status": "ok", "database": "ok", "redis": "ok"}
        assert _get(f"http://127.0.0.1:{port}/docs")[0] == 200
        spec = json.loads(_get(f"http://127.0.0.1:{port}/docs/openapi.json")[1])
        assert spec["openapi"].startswith("3.") and "/healthz" in spec["paths"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output = server.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:
            server.kill()  # never leave a server behind, whatever failed
            output = server.communicate()[0].decode()
            raise AssertionError("the server did not stop on Ctrl-C:\n" + output[-3000:]) from None
    assert server.returncode == 0, output
