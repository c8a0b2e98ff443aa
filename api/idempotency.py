"""``@idempotent``: runs a POST once per (caller, Idempotency-Key) and replays its response.

Place it inside the auth decorator (the caller must be known: keys are scoped to the caller).
A handler whose slow part must not hold a transaction (an application pulling the credit
bureau) uses ``run_prepared`` instead, under ``@takes_key``.
"""

from __future__ import annotations

from functools import wraps
from typing import Awaitable, Callable

from sanic import HTTPResponse, Request, response
from sanic_ext.extensions.openapi import openapi

from api.errors import IdempotencyKeyRequired
from infra import idempotency

HEADER = "Idempotency-Key"


def idempotent(*, required: bool):
    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            key = request.headers.get(HEADER)
            if key is None:
                if required:
                    raise IdempotencyKeyRequired()
                return await handler(request, *args, **kwargs)

            async def command() -> idempotency.StoredResponse:
                return _stored(await handler(request, *args, **kwargs))

            return _replayable(await idempotency.run_once(request.ctx.actor.label, key, _fingerprint(request), command))

        return takes_key(required=required)(wrapper)

    return decorate


def takes_key(*, required: bool):
    """Documents the Idempotency-Key header of a route."""
    return openapi.parameter(HEADER, str, "header", required=required)


async def run_prepared(request: Request, prepare: Callable[[], Awaitable], command: Callable[..., Awaitable[HTTPResponse]]) -> HTTPResponse:
    """``prepare()`` in no transaction, then ``command(prepared)`` in one, once per key (required)."""
    key = request.headers.get(HEADER)
    if key is None:
        raise IdempotencyKeyRequired()

    async def stored_command(prepared) -> idempotency.StoredResponse:
        return _stored(await command(prepared))

    return _replayable(
        await idempotency.run_prepared(request.ctx.actor.label, key, _fingerprint(request), prepare, stored_command)
    )


def _fingerprint(request: Request) -> str:
    return idempotency.fingerprint(request.method, request.path, request.body or b"")


def _stored(result: HTTPResponse) -> idempotency.StoredResponse:
    return idempotency.StoredResponse(result.status, result.content_type, bytes(result.body))


def _replayable(stored: idempotency.StoredResponse) -> HTTPResponse:
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
    return response.raw(stored.body, status=stored.status_code, content_type=stored.content_type, headers=headers)
