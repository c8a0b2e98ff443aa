"""``create_app()``: the one composition root. It wires settings, the database, Redis and the
providers of outside parties, registers every blueprint, and connects nothing at import time."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time

import orjson

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext.extensions.http.extension import HTTPExtension
from sanic_ext.extensions.openapi.extension import OpenAPIExtension

from api import admin, channels, contracts, customer, health, lending, loans, marketing, open_platform, risk_lists, staff_auth
from api import monitoring as monitoring_api, risk_rules
from api import transactions as transactions_api
from api import marketing_staff
from api import campaigns as campaigns_api
from api import risk as risk_api
from api import console
from api import products_staff
from api.errors import JsonErrorHandler
from api.validation import document_models
from channels.sessions import TokenPolicy
from infra import pii
from infra.logs import BatchedInfoLog, lean_log_records, log_config, request_id_var
from infra.outbox import run_relay
from infra.redis import create_redis
from infra.settings import Settings
from server import database
from server.handlers import outbox_handlers, relay_policy
from server.providers import build_providers

log = logging.getLogger("server")
request_log = BatchedInfoLog(log)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def create_app(
    settings: Settings | None = None,
    *,
    name: str = "rcb_lending",
    redis=None,
    manage_database: bool = True,
) -> Sanic:
    """Build the API. Tests pass their own ``redis`` client and open the database themselves
    (``manage_database=False``); the server and workers let the app own both."""
    settings = settings or Settings.from_env()
    configure_pii(settings)

    # Every request writes a log line: spare each one the caller and thread lookups nobody prints.
    lean_log_records()
    app = Sanic(
        name,
        log_config=log_config(json_lines=settings.log_json, level=settings.log_level),
        error_handler=JsonErrorHandler(),
        dumps=orjson.dumps,
    )
    app.config.REQUEST_MAX_SIZE = settings.max_request_bytes
    app.config.ACCESS_LOG = False  # our own request log line carries the request id and duration
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_URL_PREFIX = "/docs"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.OAS_UI_REDOC = False
    app.config.CORS = False
    # sanic-ext without its dependency injection, which nothing here uses: left on, it is a signal
    # handler run on every request (about 6% of a red-packet grab's CPU in a py-spy profile).
    app.extend(built_in_extensions=False, extensions=[OpenAPIExtension, HTTPExtension])
    app.ext.openapi.describe(
        "Rural commercial banks' online lending platform",
        version="1",
        description="One API for the WeChat mini-program, bank apps, partner platforms and the staff console.",
    )
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")

    app.ctx.settings = settings
    app.ctx.token_policy = TokenPolicy(
        secret_key=settings.secret_key,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )
    app.ctx.redis = redis if redis is not None else create_redis(settings)
    app.ctx.providers = build_providers(settings, app.ctx.redis)
    if manage_database:
        # First: Sanic runs shutdown listeners last-registered first, so the database and Redis
        # close after every blueprint's own shutdown (the grab desk's last commits) is done.
        _manage_database(app, settings)

    for blueprint in (health.bp, staff_auth.bp, admin.bp, customer.bp, customer.banks_bp, channels.bp, open_platform.bp, risk_lists.bp, lending.bp, lending.staff_bp, contracts.bp, loans.bp, marketing.bp):
        app.blueprint(blueprint)
    for blueprint in (risk_rules.bp, monitoring_api.bp):
        app.blueprint(blueprint)
    app.blueprint(transactions_api.bp)
    app.blueprint(marketing_staff.bp)
    app.blueprint(campaigns_api.bp)
    app.blueprint(risk_api.bp)
    app.blueprint(console.bp)
    app.blueprint(products_staff.bp)

    # Before sanic-ext builds the OpenAPI document (priority -1000), whatever blueprints were added.
    app.before_server_start(document_models, priority=0)
    _add_request_context(app)
    if settings.run_embedded_workers:
        _run_embedded_workers(app)
    return app


def configure_pii(settings: Settings) -> None:
    pii.configure(pii.Keyring.from_spec(settings.pii_encryption_keys, settings.pii_active_key_id, settings.pii_hash_key))


# Hex with its digits spelled as the letters g-p: a hex id has a run of 11 digits about one time in
# eight, which the log scrubber takes for a phone number (masking the id, and searching the line).
_HEX_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_request_id() -> str:
    """32 random letters a-p (128 bits), from os.urandom: like uuid4().hex without building a UUID
    (a quarter of the cost), and never mistaken for personal numbers."""
    return os.urandom(16).hex().translate(_HEX_DIGITS_AS_LETTERS)


def _add_request_context(app: Sanic) -> None:
    @app.on_request
    async def start(request: Request) -> None:
        offered = request.headers.get("x-request-id", "")
        request.ctx.request_id = offered if _SAFE_REQUEST_ID.match(offered) else new_request_id()
        request.ctx.started = time.perf_counter()
        request_id_var.set(request.ctx.request_id)

    @app.on_response
    async def finish(request: Request, response: HTTPResponse) -> None:
        request_id = getattr(request.ctx, "request_id", None)
        if request_id:
            response.headers["X-Request-ID"] = request_id
        started = getattr(request.ctx, "started", None)
        # The path only: query strings can carry personal data.
        request_log.info(
            "request",
            {
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
            },
        )


def _manage_database(app: Sanic, settings: Settings) -> None:
    @app.before_server_start
    async def open_database(app: Sanic) -> None:
        await database.open_database(settings.database_url)

    @app.after_server_stop
    async def close(app: Sanic) -> None:
        await database.close_database()
        await app.ctx.redis.aclose()


def _run_embedded_workers(app: Sanic) -> None:
    """The demo runs the outbox relay inside the API process; production runs `server.cli relay`."""

    @app.after_server_start
    async def start_relay(app: Sanic) -> None:
        app.ctx.stop_workers = asyncio.Event()
        handlers = outbox_handlers(app.ctx.settings, app.ctx.providers)
        app.ctx.relay = asyncio.create_task(run_relay(handlers, stop=app.ctx.stop_workers, policy=relay_policy(app.ctx.settings)))

    @app.before_server_stop
    async def stop_relay(app: Sanic) -> None:
        app.ctx.stop_workers.set()
        await app.ctx.relay
