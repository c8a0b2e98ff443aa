"""``@signed(load)``: a server-to-server route checks the request's signature before it looks at
the body (see ``channels.signing``). The signed path includes the query string."""

from __future__ import annotations

import time
from functools import wraps

from sanic import Request
from sanic_ext.extensions.openapi import openapi

from api.auth import caller_address
from channels import signing

HEADERS = ("X-Key-Id", "X-Timestamp", "X-Nonce", "X-Signature")


def signed_path(request: Request) -> str:
    return request.path + (f"?{request.query_string}" if request.query_string else "")


def signed(load):
    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            settings = request.app.ctx.settings
            verified = await signing.verify(
                signing.SignedRequest(
                    method=request.method,
                    path=signed_path(request),
                    key_id=request.headers.get("x-key-id"),
                    timestamp=request.headers.get("x-timestamp"),
                    nonce=request.headers.get("x-nonce"),
                    signature=request.headers.get("x-signature"),
                    body=request.body or b"",
                ),
                load=load,
                redis=request.app.ctx.redis,
                nonce_prefix=f"{settings.redis_key_prefix}nonce:",
                window_seconds=settings.signature_window_seconds,
                now=time.time(),
                source=caller_address(request),
            )
            request.ctx.principal = verified.principal
            return await handler(request, *args, **kwargs)

        for header in HEADERS:
            wrapper = openapi.parameter(header, str, "header", required=True)(wrapper)
        return wrapper

    return decorate
