from __future__ import annotations

import asyncio

from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi
from tortoise import connections

from infra.redis import ping

bp = Blueprint("health")

DB_TIMEOUT_SECONDS = 2


async def _database_ok() -> bool:
    try:
        await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), DB_TIMEOUT_SECONDS)
        return True
    except Exception:  # any failure means "down" to a health check
        return False


@bp.get("/healthz")
@openapi.summary("Liveness and dependencies")
@openapi.description(
    "200 with status ok, or degraded when Redis is down (lending keeps working without it); 503 when the database is down."
)
async def healthz(request: Request):
    database_ok, redis_ok = await asyncio.gather(_database_ok(), ping(request.app.ctx.redis))
    body = {
        "status": "ok" if database_ok and redis_ok else ("degraded" if database_ok else "down"),
        "database": "ok" if database_ok else "down",
        "redis": "ok" if redis_ok else "down",
    }
    if not database_ok:
        body["error"] = {"code": "DATABASE_UNAVAILABLE", "message": "the database does not answer", "details": None}
        return response.json(body, status=503, headers={"Retry-After": "5"})
    return response.json(body)
