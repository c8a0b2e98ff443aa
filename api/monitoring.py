"""The staff API for product monitoring (M19): the figures as JSON for the console and PNG charts
for a risk meeting, per product and bank. Staff of a bank see their bank's figures (another
bank's answers 404); association staff see any bank's, or the whole association's without
``bank_id``."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api.auth import staff_required
from api.validation import ObjectId, Query, query_params
from lending_core.risk import monitoring

bp = Blueprint("monitoring", url_prefix="/api/v1/admin/monitoring")


class FiguresQuery(Query):
    bank_id: ObjectId | None = None
    product: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+$")
    as_of: date | None = None
    months: int = Field(12, ge=1, le=monitoring.MAX_MONTHS)


def _selection(query: FiguresQuery) -> dict:
    return {"bank_id": query.bank_id, "product_code": query.product, "as_of": query.as_of, "months": query.months}


@bp.get("/products")
@openapi.summary("The products the caller may see figures of (their bank's offer; all for the association)")
@staff_required("monitoring.read")
async def products(request: Request):
    return response.json({"items": await monitoring.products(request.ctx.actor)})


@bp.get("/figures")
@openapi.summary("Approval rate, overdue buckets, default rate, vintage curves and warnings by category")
@staff_required("monitoring.read")
@query_params(FiguresQuery)
async def figures(request: Request, query: FiguresQuery):
    return response.json(await monitoring.figures(request.ctx.actor, **_selection(query)))


@bp.get("/charts/<chart:str>")
@openapi.summary("A chart of the figures as PNG: vintage, overdue or approvals")
@staff_required("monitoring.read")
@query_params(FiguresQuery)
async def chart(request: Request, chart: str, query: FiguresQuery):
    png = await monitoring.chart_png(request.ctx.actor, chart.removesuffix(".png"), **_selection(query))
    return response.raw(png, content_type="image/png", headers={"Cache-Control": "private, max-age=60"})
