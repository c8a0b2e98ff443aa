"""Request bodies and query strings: parsed by pydantic models that forbid unknown fields.

Forbidding unknown fields is what stops mass assignment: a body that tries to set a status, a
limit, a rate or an amount the caller may not set is refused with FIELD_NOT_ALLOWED, not ignored.
Error details name fields and problems, never the submitted values (they may be personal data).
"""

from __future__ import annotations

from functools import wraps
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sanic import Request
from sanic_ext.extensions.openapi.builders import OperationStore
from sanic_ext.extensions.openapi.definitions import Response
from sanic_ext.extensions.openapi.types import Schema

from api.errors import FieldNotAllowed, MalformedJson, UnsupportedMediaType, ValidationFailed

B = TypeVar("B", bound=BaseModel)

# An id as the database stores it (a signed 64-bit integer): larger values never reach a query.
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]
# A version number (of a product, a rule book) as the database stores it: a 32-bit integer.
VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _problems(exc: ValidationError) -> list[dict]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or None, "problem": error["type"], "message": error["msg"]}
        for error in exc.errors(include_input=False, include_url=False)
    ]


def _nul_fields(data: Any, path: str = "") -> list[str]:
    # PostgreSQL refuses NUL in text; no field of ours means it, so it is refused up front.
    if isinstance(data, str):
        return [path or None] if "\x00" in data else []
    if isinstance(data, dict):
        return [f for key, value in data.items() for f in _nul_fields(value, f"{path}.{key}" if path else str(key))]
    if isinstance(data, list):
        return [f for i, value in enumerate(data) for f in _nul_fields(value, f"{path}.{i}" if path else str(i))]
    return []


def _validated(model: type[B], data) -> B:
    if bad := _nul_fields(data):
        raise ValidationFailed(details=[{"field": field, "problem": "nul_character", "message": "text may not contain NUL"} for field in bad])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
        if all(p["problem"] == "extra_forbidden" for p in problems):
            raise FieldNotAllowed(details=[p["field"] for p in problems]) from None
        raise ValidationFailed(details=problems) from None


def parse_json(request: Request, model: type[B]) -> B:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if request.body and content_type != "application/json":
        raise UnsupportedMediaType()
    try:
        data = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        raise MalformedJson() from None
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object")
    return _validated(model, data)


def parse_query(request: Request, model: type[B]) -> B:
    data = {}
    for key, values in request.args.items():
        data[key] = values[0] if len(values) == 1 else values
    return _validated(model, data)


# The model a route parses is kept on its handler under these names. ``functools.wraps`` copies a
# function's attributes onto its wrapper, so the names survive the decorators stacked above
# (customer_required, idempotent, ...), which is where sanic-ext's own per-function records of a
# body or a parameter got lost: those routes had no body or query in the OpenAPI document.
BODY_MODEL = "_openapi_body_model"
QUERY_MODEL = "_openapi_query_model"


def json_body(model: type[B]):
    """Parse the body into ``model`` and pass it as ``body=``; documented by ``document_models``."""

    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            return await handler(request, *args, body=parse_json(request, model), **kwargs)

        setattr(wrapper, BODY_MODEL, model)
        return wrapper

    return decorate


def query_params(model: type[B]):
    """Parse the query string into ``model`` and pass it as ``query=``; documented by ``document_models``."""

    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            return await handler(request, *args, query=parse_query(request, model), **kwargs)

        setattr(wrapper, QUERY_MODEL, model)
        return wrapper

    return decorate


def documented_body(model: type[B]):
    """Document ``model`` as the body of a route that parses it itself (``parse_json``), later than
    a signature check, say."""

    def decorate(handler):
        setattr(handler, BODY_MODEL, model)
        return handler

    return decorate


class _JsonSchema(Schema):
    """A schema written out whole (sanic-ext's own Schema keeps only the keys it knows)."""

    def __init__(self, schema: dict):
        self._fields = schema


def openapi_schema(model: type[BaseModel]) -> dict:
    """``model``'s JSON schema as OpenAPI 3.0 reads it: nested models inlined, ``nullable`` for
    ``None``, ``enum`` for constants, boolean exclusive bounds (what pydantic writes is JSON Schema 2020-12)."""
    schema = model.model_json_schema()
    return _openapi_3_0(schema, schema.get("$defs", {}))


def _openapi_3_0(node: Any, defs: dict) -> Any:
    if isinstance(node, list):
        return [_openapi_3_0(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    for combinator in ("anyOf", "oneOf"):
        options = node.get(combinator)
        if options and any(option.get("type") == "null" for option in options):
            options = [option for option in options if option.get("type") != "null"]
            node["nullable"] = True
            if len(options) == 1:
                del node[combinator]
                node = {**options[0], **node}
            else:
                node[combinator] = options
    if "$ref" in node:
        return _openapi_3_0({**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    out = {k: _openapi_3_0(v, defs) for k, v in node.items() if k not in ("$defs", "discriminator")}
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out[bound], bool):
            out[plain], out[bound] = out[bound], True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def _parameter_key(parameter) -> tuple:
    return parameter.fields["name"], parameter.fields.get("in")


def _adopt_inner_documentation(operation, handler) -> None:
    """sanic-ext records documentation per function, so what a decorator wrote for the function it
    returned (a required Idempotency-Key header, a signature's headers, ``security``) is lost once
    another decorator wraps that one. The route's handler adopts what its inner functions hold."""
    store = OperationStore()
    inner = getattr(handler, "__wrapped__", None)
    while inner is not None:
        if inner in store:
            found = store[inner]
            known = {_parameter_key(p) for p in operation.parameters}
            operation.parameters.extend(p for p in found.parameters if _parameter_key(p) not in known)
            operation.security.extend(gate for gate in found.security if gate not in operation.security)
            if getattr(found, "requestBody", None) and not getattr(operation, "requestBody", None):
                operation.requestBody = found.requestBody
            for status, documented in found.responses.items():
                operation.responses.setdefault(status, documented)
        inner = getattr(inner, "__wrapped__", None)


# What every refusal looks like (api.errors.error_body), documented for every operation's 4xx.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                "message": {"type": "string"},
                "details": {"description": "what the code needs to say more: problems by field, limits, a request id"},
            },
        }
    },
}


def _document_responses(operation) -> None:
    """``@openapi.response(status, description=...)`` without content documents a text body
    (sanic-ext's default); our bodies are JSON. A refusal gets the error schema, a success its
    description only; and every operation documents the error shape for 4xx."""
    def error(description: str) -> Response:
        return Response.make({"application/json": _JsonSchema(ERROR_SCHEMA)}, description=description)

    for status, documented in list(operation.responses.items()):
        if list(documented.fields.get("content") or {}) == ["*/*"]:
            description = documented.fields.get("description")
            operation.responses[status] = error(description) if str(status).startswith(("4", "5")) else Response(None, description=description)
    operation.responses.setdefault("4XX", error("refused (the standard error body)"))


def document_models(app) -> None:
    """Put every route's body and query models into the OpenAPI document, with what inner
    decorators documented (a listener that runs before sanic-ext builds the document;
    idempotent, as tests build several apps per process)."""
    store = OperationStore()
    for route in app.router.routes:
        handler = route.handler
        operation = store[handler]
        _adopt_inner_documentation(operation, handler)
        _document_responses(operation)
        body_model, query_model = getattr(handler, BODY_MODEL, None), getattr(handler, QUERY_MODEL, None)
        if body_model:
            operation.body({"application/json": _JsonSchema(openapi_schema(body_model))}, required=True)
        if query_model:
            schema = openapi_schema(query_model)
            fields = schema.get("properties", {})
            # Parameters a route documented by hand are replaced: the model's schema is the exact one.
            operation.parameters[:] = [p for p in operation.parameters if not (p.fields.get("in") == "query" and p.fields["name"] in fields)]
            for name, field_schema in fields.items():
                # A query string cannot say null: a parameter left out is the None.
                field_schema = {k: v for k, v in field_schema.items() if k != "nullable" and not (k == "default" and v is None)}
                operation.parameter(name, _JsonSchema(field_schema), "query", required=name in schema.get("required", ()), description=field_schema.get("description"))
