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
from sanic_ext.extensions.openapi import openapi

from api.errors import FieldNotAllowed, MalformedJson, UnsupportedMediaType, ValidationFailed

B = TypeVar("B", bound=BaseModel)

# An id as the database stores it (a signed 64-bit integer): larger values never reach a query.
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]


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


def json_body(model: type[B]):
    """Parse the body into ``model`` and pass it as ``body=``; document it in OpenAPI."""

    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            return await handler(request, *args, body=parse_json(request, model), **kwargs)

        return openapi.body({"application/json": model}, required=True)(wrapper)

    return decorate


def query_params(model: type[B]):
    def decorate(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            return await handler(request, *args, query=parse_query(request, model), **kwargs)

        for name, field in model.model_fields.items():
            wrapper = openapi.parameter(name, field.annotation if field.annotation in (int, str, bool) else str, "query")(wrapper)
        return wrapper

    return decorate
