"""The one way to reach bank-owned and customer-owned rows (Zulip's ``access_*`` pattern).

A query that could cross banks must start here: ``for_staff`` narrows to the staff member's bank
(association staff see all), ``for_customer`` to the customer's own rows. Anything not visible is
``NotFound`` — the caller learns nothing about other banks' or customers' objects, not even that
they exist.
"""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

from infra.actors import Actor
from infra.errors import Conflict, NotFound, PermissionDenied
from lending_core.org import roles

M = TypeVar("M", bound=Model)


class BankNotChosen(Conflict):
    """The customer has not chosen a member bank yet (from an invite code, or by city/county)."""


def allows(actor: Actor, permission: str) -> bool:
    return actor.kind == "staff" and roles.allows(actor.roles, permission)


def require(actor: Actor, permission: str) -> None:
    if not allows(actor, permission):
        raise PermissionDenied(f"this needs the {permission} permission")


def for_staff(model: type[M], actor: Actor, *, permission: str, bank_field: str = "bank_id") -> QuerySet[M]:
    """Rows of ``model`` this staff member may see: their own bank's, or all for association staff."""
    require(actor, permission)
    query = model.all()
    if actor.is_association:
        return query
    return query.filter(**{bank_field: actor.bank_id})


async def get_for_staff(
    model: type[M], actor: Actor, object_id: Any, *, permission: str, bank_field: str = "bank_id"
) -> M:
    obj = await for_staff(model, actor, permission=permission, bank_field=bank_field).filter(id=as_object_id(object_id)).first()
    if obj is None:
        raise NotFound(f"no such {model.__name__.lower()}")
    return obj


def as_customer_id(actor: Actor) -> int:
    if actor.kind != "customer":
        raise PermissionDenied("this is for customers")
    return int(actor.id)


def customer_bank(actor: Actor) -> int:
    """The member bank the customer is dealing with in this session."""
    as_customer_id(actor)
    if actor.bank_id is None:
        raise BankNotChosen()
    return actor.bank_id


def for_customer(model: type[M], actor: Actor, *, owner_field: str = "customer_id") -> QuerySet[M]:
    return model.filter(**{owner_field: as_customer_id(actor)})


async def get_for_customer(model: type[M], actor: Actor, object_id: Any, *, owner_field: str = "customer_id") -> M:
    obj = await for_customer(model, actor, owner_field=owner_field).filter(id=as_object_id(object_id)).first()
    if obj is None:
        raise NotFound(f"no such {model.__name__.lower()}")
    return obj


def check_bank_visible(actor: Actor, bank_id: int | None) -> None:
    """A bank id given in a body or query must be the staff member's own (or any, for association)."""
    if actor.is_association:
        return
    if bank_id != actor.bank_id:
        raise NotFound("no such bank")


def as_object_id(value: Any, missing: NotFound | None = None) -> int:
    """An id as the database can hold it (a positive BIGINT); anything else is ``missing`` —
    the caller's own "no such …" — since no such object can exist."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise (missing or NotFound("no such object")) from None
    if not 0 < number <= 2**63 - 1:
        raise missing or NotFound("no such object")
    return number
