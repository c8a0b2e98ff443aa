"""Who is calling, checked on every protected route: ``@customer_required`` and
``@staff_required(permission)`` put an ``Actor`` on ``request.ctx.actor``.

Staff are reloaded on each request (admin traffic is light, and a disabled account or a removed
role must stop working at once); customers are trusted from their short-lived token.
"""

from __future__ import annotations

from functools import wraps

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api.validation import Body, json_body
from channels import sessions
from channels.sessions import TokenPolicy
from infra.actors import Actor
from lending_core import access
from lending_core.org import service as org

SECURITY_SCHEME = "bearer"


def token_policy(request: Request) -> TokenPolicy:
    return request.app.ctx.token_policy


def caller_address(request: Request) -> str:
    """The caller's network address: the proxy's word for it when the deployment trusts a proxy
    (Sanic's FORWARDED_SECRET, REAL_IP_HEADER or PROXIES_COUNT settings), else the peer's.
    Without a trusted proxy the forwarding headers are not even parsed (2% of a grab's CPU)."""
    config = request.app.config  # a dict: .get spares Config.__getattr__'s failed lookup three times
    if config.get("FORWARDED_SECRET") or config.get("REAL_IP_HEADER") or config.get("PROXIES_COUNT"):
        return request.client_ip
    return request.ip


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise sessions.TokenInvalid("send 'Authorization: Bearer <access token>'")
    return token.strip()


def _claims(request: Request, audience: str) -> dict:
    return sessions.read_access_token(_bearer(request), audience=audience, secret_key=token_policy(request).secret_key)


def customer_required(handler):
    @wraps(handler)
    async def wrapper(request: Request, *args, **kwargs):
        claims = _claims(request, "customer")
        request.ctx.actor = Actor(kind="customer", id=int(claims["sub"]), bank_id=claims.get("bank"), channel=claims.get("chn"))
        return await handler(request, *args, **kwargs)

    return openapi.secured(SECURITY_SCHEME)(wrapper)


def staff_required(permission: str | None = None):
    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            claims = _claims(request, "staff")
            actor = org.staff_actor(await org.current_staff(int(claims["sub"])))
            if permission:
                access.require(actor, permission)
            request.ctx.actor = actor
            return await handler(request, *args, **kwargs)

        return openapi.secured(SECURITY_SCHEME)(wrapper)

    return decorate


async def reload_staff_actor(staff_id: int, _bank_id: int | None) -> Actor:
    return org.staff_actor(await org.current_staff(staff_id))


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=256)


def add_session_routes(bp: Blueprint, *, audience: str, current_actor) -> None:
    """``POST <bp>/refresh`` and ``POST <bp>/logout`` for one audience's rotating refresh tokens."""

    @bp.post("/refresh")
    @openapi.summary(f"Exchange a {audience} refresh token for a new pair (the old one is spent)")
    @json_body(RefreshBody)
    async def refresh(request: Request, body: RefreshBody):
        tokens = await sessions.refresh(body.refresh_token, audience=audience, policy=token_policy(request), current_actor=current_actor)
        return response.json(tokens.as_dict())

    @bp.post("/logout")
    @openapi.summary(f"End the {audience} session of a refresh token")
    @json_body(RefreshBody)
    async def logout(request: Request, body: RefreshBody):
        await sessions.revoke(body.refresh_token)
        return response.empty()
