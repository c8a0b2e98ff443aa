"""``@idempotent``: runs a POST once per (caller, Idempotency-Key) and replays its response.

Place it inside the auth decorator (the caller must be known: keys are scoped to the caller).
"""

from __future__ import annotations

from functools import wraps

from sanic import Request, response
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
                result = await handler(request, *args, **kwargs)
                return idempotency.StoredResponse(result.status, result.content_type, bytes(result.body))

            stored = await idempotency.run_once(
                request.ctx.actor.label,
                key,
                idempotency.fingerprint(request.method, request.path, request.body or b""),
                command,
            )
            headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
            return response.raw(stored.body, status=stored.status_code, content_type=stored.content_type, headers=headers)

        return openapi.parameter(HEADER, str, "header", required=required)(wrapper)

    return decorate
