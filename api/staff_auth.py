"""Staff sign-in for the console and admin API: password, lockout, rotating refresh tokens."""

from __future__ import annotations

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import add_session_routes, reload_staff_actor, staff_required, token_policy
from api.validation import Body, json_body
from channels import sessions
from lending_core.org import roles
from lending_core.org import service as org

bp = Blueprint("staff_auth", url_prefix="/api/v1/staff")


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@bp.post("/login")
@openapi.summary("Sign in as a staff member")
@json_body(LoginBody)
async def login(request: Request, body: LoginBody):
    settings = request.app.ctx.settings
    staff = await org.authenticate(
        body.username,
        body.password,
        max_failures=settings.staff_max_failed_logins,
        lockout_seconds=settings.staff_lockout_seconds,
    )
    tokens = await sessions.start_session(org.staff_actor(staff), channel="console", policy=token_policy(request))
    return response.json({**tokens.as_dict(), "staff": presenters.staff(staff)})


@bp.get("/me")
@openapi.summary("The signed-in staff member, with the permissions their roles give")
@staff_required()
async def me(request: Request):
    staff = await org.current_staff(int(request.ctx.actor.id))
    return response.json({**presenters.staff(staff), "permissions": roles.granted(staff.roles)})


add_session_routes(bp, audience="staff", current_actor=reload_staff_actor)
