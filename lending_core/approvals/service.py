from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from tortoise.transactions import in_transaction

from infra import audit, clock, pii
from infra.actors import Actor
from infra.errors import Conflict, PermissionDenied
from infra.transitions import TransitionTable
from lending_core import access
from lending_core.approvals.models import ChangeRequest


class UnknownChangeKind(Conflict):
    """Only registered kinds of change can be proposed."""


class SelfApproval(PermissionDenied):
    """The person who proposed a change cannot approve or reject it: a second person must."""


STATUS = TransitionTable(
    "change request",
    {
        ("approve", "pending"): "applied",
        ("reject", "pending"): "rejected",
        ("withdraw", "pending"): "withdrawn",
    },
)


@dataclass(frozen=True)
class ChangeKind:
    name: str
    # The permission a checker needs; the maker needs only to be allowed to propose it.
    approve_permission: str
    propose_permission: str
    apply: Callable[[ChangeRequest, Actor], Awaitable[None]]


_KINDS: dict[str, ChangeKind] = {}


def register(kind: ChangeKind) -> None:
    _KINDS[kind.name] = kind


def kind_of(name: str) -> ChangeKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownChangeKind(f"unknown kind of change: {name}") from None


async def propose(
    actor: Actor,
    kind: str,
    *,
    bank_id: int | None,
    target_type: str,
    target_id: int | str,
    payload: dict,
    reason: str,
) -> ChangeRequest:
    """Record a change for a second person to approve. ``bank_id`` is the bank the change belongs
    to (None for association-wide changes): its checkers, and association staff, will see it."""
    change_kind = kind_of(kind)
    access.require(actor, change_kind.propose_permission)
    access.check_bank_visible(actor, bank_id)
    async with in_transaction():
        change = await ChangeRequest.create(
            bank_id=bank_id,
            kind=kind,
            target_type=target_type,
            target_id=str(target_id),
            payload=payload,
            reason=pii.scrub_text(reason),
            proposed_by_id=actor.id,
        )
        await audit.record(actor, "change.propose", "change_request", change.id, bank_id=bank_id, after=_snapshot(change))
    return change


async def approve(actor: Actor, change_id: int, note: str | None = None) -> ChangeRequest:
    return await _decide(actor, change_id, "approve", note)


async def reject(actor: Actor, change_id: int, note: str | None = None) -> ChangeRequest:
    return await _decide(actor, change_id, "reject", note)


async def withdraw(actor: Actor, change_id: int) -> ChangeRequest:
    async with in_transaction():
        change = await _locked(actor, change_id, permission="changes.propose")
        if change.proposed_by_id != actor.id:
            raise PermissionDenied("only the proposer can withdraw a change")
        return await _move(actor, change, "withdraw", None)


async def _decide(actor: Actor, change_id: int, event: str, note: str | None) -> ChangeRequest:
    async with in_transaction():
        change = await _locked(actor, change_id, permission="changes.propose")
        access.require(actor, kind_of(change.kind).approve_permission)
        if change.proposed_by_id == actor.id:
            raise SelfApproval()
        STATUS.next(change.status, event)  # refuse before applying anything
        if event == "approve":
            await kind_of(change.kind).apply(change, actor)
        return await _move(actor, change, event, note)


async def _locked(actor: Actor, change_id: int, *, permission: str) -> ChangeRequest:
    change = await access.get_for_staff(ChangeRequest, actor, change_id, permission=permission)
    # Re-read under a row lock so two checkers cannot both apply one change.
    return await ChangeRequest.filter(id=change.id).select_for_update().get()


async def _move(actor: Actor, change: ChangeRequest, event: str, note: str | None) -> ChangeRequest:
    before = _snapshot(change)
    change.status = STATUS.next(change.status, event)
    if event != "withdraw":
        change.decided_by_id = actor.id
        change.decision_note = pii.scrub_text(note) if note else None
    change.decided_at = clock.now()
    await change.save()
    await audit.record(actor, f"change.{event}", "change_request", change.id, bank_id=change.bank_id, before=before, after=_snapshot(change))
    return change


def _snapshot(change: ChangeRequest) -> dict:
    return {"kind": change.kind, "target": f"{change.target_type}:{change.target_id}", "status": change.status, "payload": change.payload}


def changes(actor: Actor, *, status: str | None = None):
    query = access.for_staff(ChangeRequest, actor, permission="changes.propose")
    return (query.filter(status=status) if status else query).order_by("-id")


async def change(actor: Actor, change_id: int) -> ChangeRequest:
    return await access.get_for_staff(ChangeRequest, actor, change_id, permission="changes.propose")
