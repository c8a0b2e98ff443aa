"""Product staff: the catalogue with what waits for approval, one version's definition (as data
and in its file format), and champion/challenger simulation over uploaded applicant profiles.

Validating and proposing versions, and approving them, are the routes of ``api.lending`` and
``api.admin``; these are what the console's product page needs besides.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import staff_required
from api.validation import Body, ObjectId, json_body
from lending_core.products import service as products
from lending_core.products import simulations
from lending_core.products.definition_text import to_text

bp = Blueprint("products_staff", url_prefix="/api/v1/admin")


class SimulationBody(Body):
    """The applicants as CSV text, and the challenger: a saved version, or a definition as JSON
    or in its file format. Without a challenger the published version is run alone."""

    csv: str = Field(min_length=1, max_length=600_000)
    challenger_version: int | None = Field(None, ge=1, le=1_000_000)
    challenger_definition: dict[str, Any] | None = None
    challenger_text: str | None = Field(None, min_length=1, max_length=200_000)
    bank_id: ObjectId | None = None

    @model_validator(mode="after")
    def _one_challenger(self):
        if sum(x is not None for x in (self.challenger_version, self.challenger_definition, self.challenger_text)) > 1:
            raise ValueError("name one challenger: challenger_version, challenger_definition or challenger_text")
        return self

    def challenger(self) -> dict[str, Any] | None:
        if self.challenger_text is not None:
            return products.read_definition_text(self.challenger_text)
        return self.challenger_definition


@bp.get("/products")
@openapi.summary("Products the caller manages, with the published version and any proposal waiting for approval")
@staff_required("products.manage")
async def list_products(request: Request):
    return response.json({"items": [presenters.product_listing(p) for p in await products.catalogue(request.ctx.actor)]})


@bp.get("/products/<code:str>/versions/<version:int>")
@openapi.summary("One version of a product: its definition as data and in its file format (TOML)")
@staff_required("products.manage")
async def product_version(request: Request, code: str, version: int):
    _, found = await products.version_for_staff(request.ctx.actor, code, version)
    return response.json(presenters.product_version_detail(found, to_text(found.definition)))


@bp.post("/products/<code:str>/simulations")
@openapi.summary(
    "Champion/challenger simulation over applicant profiles (CSV): approval rates, limit and rate quartiles, "
    f"and whose outcome changed (at most {simulations.MAX_APPLICANTS} applicants; nothing is saved)"
)
@staff_required("products.manage")
@json_body(SimulationBody)
async def simulate(request: Request, code: str, body: SimulationBody):
    result = await simulations.simulate_versions(
        request.ctx.actor,
        request.app.ctx.providers.data_sources,
        code,
        csv_text=body.csv,
        challenger_version=body.challenger_version,
        challenger_definition=body.challenger(),
        bank_id=body.bank_id,
    )
    return response.json(presenters.simulation(result))
