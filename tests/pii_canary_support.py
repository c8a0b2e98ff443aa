"""The places the personal-data canary looks, and how it looks.

A canary is a person with a distinctive name, ID number and phone. After the flows have run,
each place personal data could end up is read back as text (every response body, the log lines
as the app's own formatter writes them, a full dump of the database, the outbox payloads, every
Redis key and value under the test's prefix, the texts in the SMS sandbox's inboxes, the
messages the fake WeChat was asked to send, the evidence files the notary sandbox wrote) and
searched for every spelling of the clear values. Masked forms (``137****5678``, ``司**月``) and
keyed hashes never contain the clear value, so they pass by construction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sanic_testing.testing import ASGI_HOST, ASGI_PORT

from infra.outbox import OutboxMessage
from infra.settings import Settings
from tests.api.test_pii_canary import LOGGERS, captured_logs, clear_forms


@dataclass(frozen=True)
class Canary:
    """One planted person: who they are in the story, and the three values that must not leak."""

    role: str
    name: str
    id_number: str | None  # None: staff members have none on file
    phone: str

    def values(self) -> dict[str, str]:
        values = {f"{self.role} name": self.name, f"{self.role} ID number": self.id_number, f"{self.role} phone": self.phone}
        return {label: value for label, value in values.items() if value}


def spellings(value: str) -> set[str]:
    """The clear value as it could be written: as is, grouped, JSON-escaped, URL-encoded."""
    forms = clear_forms(value)
    return forms | {urllib.parse.quote(form) for form in forms} | {urllib.parse.quote_plus(form) for form in forms}


@dataclass(frozen=True)
class Hit:
    place: str
    value: str
    spelling: str
    context: str

    def __str__(self) -> str:
        return f"{self.place}: {self.value} as {self.spelling!r} in …{self.context}…"


def search(places: dict[str, str], canaries: Iterable[Canary]) -> list[Hit]:
    """Every clear spelling of every canary value in every place, with a little context."""
    wanted = [(label, form) for canary in canaries for label, value in canary.values().items() for form in spellings(value)]
    hits = []
    for place, text in places.items():
        for label, form in wanted:
            at = text.find(form)
            if at >= 0:
                hits.append(Hit(place, label, form, text[max(0, at - 60) : at + len(form) + 60].replace("\n", " ")))
    return hits


# ---- responses ------------------------------------------------------------------------------------


@dataclass
class ResponseRecorder:
    """Every response the test client received, keyed by order, method and path."""

    bodies: dict[str, str] = field(default_factory=dict)

    def wrap(self, client, monkeypatch) -> None:
        original = client.request

        async def request(method, url, *args, **kwargs):
            request_made, response = await original(method, url, *args, **kwargs)
            label = f"response #{len(self.bodies) + 1} {method} {url} -> {response.status}"
            self.bodies[label] = response.content.decode("utf-8", errors="replace")
            return request_made, response

        # httpx's get/post/... all call ``self.request``: an instance attribute takes their place.
        monkeypatch.setattr(client, "request", request)


# ---- logs -----------------------------------------------------------------------------------------


@contextmanager
def every_log_line() -> Iterator:
    """The app's log output as its JSON formatter writes it, at DEBUG, from every logger we know."""
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        with captured_logs() as stream:
            yield stream
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def without_the_test_clients_lines(logs: str) -> str:
    """The log without the lines the test's own HTTP client writes about its requests (the URL it
    asked for, query and all): they come from the test, not from the app. The app's outgoing
    calls go to other hosts, so their lines stay."""
    test_host = f"{ASGI_HOST}:{ASGI_PORT}"
    return "\n".join(line for line in logs.splitlines() if not (_logger_of(line) == "httpx" and test_host in line))


def _logger_of(line: str) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("logger") if isinstance(entry, dict) else None


# ---- database -------------------------------------------------------------------------------------


def sqlite_path(database_url: str) -> str:
    return database_url.removeprefix("sqlite://").split("?", 1)[0]


def database_dump(settings: Settings) -> str:
    """A full dump of the test database, schema and data, as the operators' own tools write it."""
    if settings.uses_embedded_database:
        with sqlite3.connect(sqlite_path(settings.database_url)) as connection:
            return "\n".join(connection.iterdump())
    dumped = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", settings.database_url],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return dumped.stdout


async def outbox_payloads() -> dict[str, str]:
    return {
        f"outbox #{message.id} {message.topic}": json.dumps(message.payload, ensure_ascii=False) + f"\n{message.last_error or ''}"
        for message in await OutboxMessage.all().order_by("id")
    }


# ---- Redis ----------------------------------------------------------------------------------------


async def redis_contents(redis, prefix: str) -> dict[str, str]:
    """Each key under ``prefix`` with its value, whatever its type (the key itself is searched too)."""
    contents = {}
    async for raw_key in redis.scan_iter(match=prefix + "*"):
        kind = (await redis.type(raw_key)).decode()
        if kind == "string":
            value = await redis.get(raw_key)
        elif kind == "hash":
            value = await redis.hgetall(raw_key)
        elif kind == "list":
            value = await redis.lrange(raw_key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(raw_key)
        elif kind == "zset":
            value = await redis.zrange(raw_key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(raw_key)
        else:
            value = f"<{kind}>"
        key = raw_key.decode("utf-8", errors="replace")
        contents[f"redis {key}"] = key + " = " + _decoded(value)
    return contents


def _decoded(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return " ".join(f"{_decoded(k)}={_decoded(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return " ".join(_decoded(item) for item in value)
    return str(value)


# ---- what left for outside parties ---------------------------------------------------------------


def sms_texts(sms, canaries: Iterable[Canary]) -> dict[str, str]:
    """The texts in each canary's SMS inbox. The phone is the address an SMS goes to, so being
    kept under it is no leak; the text itself must carry no clear ID number, phone or name."""
    return {f"SMS to the {canary.role}": "\n".join(sms.texts(canary.phone)) for canary in canaries}


async def wechat_messages(fake_wechat: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as http:
        response = await http.get("__fake__/messages")
    response.raise_for_status()
    return {"WeChat subscribe messages": response.text}


def notary_files(notary_dir: str) -> dict[str, str]:
    root = Path(notary_dir)
    return {f"notary file {path.relative_to(root)}": path.read_bytes().decode("utf-8", errors="replace")
            for path in sorted(root.rglob("*")) if path.is_file()}
