"""Keyset pagination for list routes: ``?limit=&after=`` over ascending ids."""

from __future__ import annotations

from pydantic import Field

from api.validation import Query

MAX_LIMIT = 100


class PageQuery(Query):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    after: int = Field(0, ge=0, le=2**63 - 1)


async def page(query, params: PageQuery, render) -> dict:
    """One page of ``query`` (a queryset already scoped to the caller) rendered item by item."""
    rows = await query.filter(id__gt=params.after).order_by("id").limit(params.limit + 1)
    items = rows[: params.limit]
    return {
        "items": [render(row) for row in items],
        "next_after": items[-1].id if len(rows) > params.limit else None,
    }
