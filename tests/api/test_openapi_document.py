"""The OpenAPI document says what every route parses (issue 10, item 1: it is what the fuzzer reads).

A body or query model declared with ``json_body``/``query_params`` (or ``documented_body``) is in
the document with the model's own schema, whatever decorators sit above it; so is what inner
decorators documented (a required Idempotency-Key); and every operation documents the standard
error body for its 4xx answers.
"""

from __future__ import annotations

import json

from api.validation import BODY_MODEL, ERROR_SCHEMA, QUERY_MODEL, openapi_schema
from tests.support import openapi_document


def _operations(app):
    """(OpenAPI path, method, handler) of every route with a body or query model."""
    for route in app.router.routes:
        handler = route.handler
        if getattr(handler, BODY_MODEL, None) or getattr(handler, QUERY_MODEL, None):
            path = "/" + "/".join(f"{{{p[1:-1].split(':')[0]}}}" if p.startswith("<") else p for p in route.path.split("/"))
            for method in route.methods:
                yield path.replace("//", "/"), method.lower(), handler


async def test_every_body_and_query_model_is_in_the_document(settings, redis):
    app, document = await openapi_document(settings, redis)
    checked = 0
    for path, method, handler in _operations(app):
        operation = document["paths"][path][method]
        if body := getattr(handler, BODY_MODEL, None):
            assert operation["requestBody"]["content"]["application/json"]["schema"] == openapi_schema(body), (method, path)
        if query := getattr(handler, QUERY_MODEL, None):
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            # The names the query string uses (a field's alias, as in ?from=&to=).
            assert set(openapi_schema(query)["properties"]) <= documented and query.model_fields, (method, path)
        checked += 1
    # The routes that lost their models before (behind customer_required, staff_required, idempotent).
    real_name = document["paths"]["/api/v1/me/real-name"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert real_name["required"] == ["name", "id_number", "phone"] and real_name["additionalProperties"] is False
    assert {"limit", "after", "status"} <= {p["name"] for p in document["paths"]["/api/v1/admin/loans"]["get"]["parameters"]}
    assert checked >= 80, checked


async def test_inner_decorators_documentation_and_the_error_body_are_kept(settings, redis):
    _, document = await openapi_document(settings, redis)
    consent = document["paths"]["/api/v1/me/consents"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" and p["required"] for p in consent["parameters"])
    assert consent["security"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["4XX"]["content"]["application/json"]["schema"] == ERROR_SCHEMA, (method, path)
    text = json.dumps(document)
    # JSON Schema 2020-12 leftovers OpenAPI 3.0 does not read, and pydantic internals.
    assert '"#/$defs/' not in text and '"model_config"' not in text and '"type": "null"' not in text
