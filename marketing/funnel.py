"""A referral's funnel: registered → applied → approved → disbursed, advanced by lending events.

The events reach us through the outbox, at least once and not always in order (a retried
message can arrive after a later one), so advancing is idempotent and only ever forward: an
event for a stage the referral already reached changes nothing; an event that skips stages (a
disbursement heard before its approval) passes through them, each with its own time where the
lending core knows it. A referral counts at the inviter's bank: an application at another bank
does not advance it.

Each advance re-checks what could not be checked at binding — a WeChat visitor has no phone
until they verify their real name — and voids a referral whose referee turns out to share the
inviter's phone.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.transactions import in_transaction

from infra import audit, clock
from infra.actors import system
from infra.outbox import OutboxMessage
from infra.transitions import TransitionTable
from lending_core.applications.models import Application
from lending_core.applications.service import DECIDED_TOPIC
from lending_core.contracts.models import Contract
from lending_core.customers.models import Customer
from marketing import service
from marketing.models import InviteReferral

log = logging.getLogger(__name__)

# Emitted by lending_core.loans (being built alongside, so handled by name): loan_id, contract_id,
# customer_id, principal_fen (integer fen), drawn_on; the bank is the message's own bank_id.
LOAN_DISBURSED_TOPIC = "loans.loan_disbursed"
APPLICATION_DECIDED_TOPIC = DECIDED_TOPIC

REGISTERED, APPLIED, APPROVED, DISBURSED = "registered", "applied", "approved", "disbursed"
STAGES = (REGISTERED, APPLIED, APPROVED, DISBURSED)

FUNNEL = TransitionTable(
    "referral",
    {
        ("apply", REGISTERED): APPLIED,
        ("approve", APPLIED): APPROVED,
        ("disburse", APPROVED): DISBURSED,
    },
)
_EVENT_INTO = {APPLIED: "apply", APPROVED: "approve", DISBURSED: "disburse"}
# What a decided application means for the funnel: any decision means it was applied for.
_DECIDED_STAGE = {"approved": APPROVED, "rejected": APPLIED, "manual_review": APPLIED}


def steps(stage: str, target: str) -> list[str]:
    """The funnel events that take a referral from ``stage`` to ``target`` (none when it is
    already there or beyond: events are repeated and reordered, and never move a referral back)."""
    if STAGES.index(target) <= STAGES.index(stage):
        return []
    return [_EVENT_INTO[s] for s in STAGES[STAGES.index(stage) + 1 : STAGES.index(target) + 1]]


async def advance(
    customer_id: int,
    bank_id: int | None,
    target: str,
    *,
    times: dict[str, datetime],
    application_id: int | None = None,
    loan_id: int | None = None,
    principal_fen: int | None = None,
) -> InviteReferral | None:
    """Move the customer's referral (if they have one at this bank) forward to ``target``."""
    actor = system("marketing.funnel")
    async with in_transaction():
        referral = await InviteReferral.filter(referee_id__in=await _records_of(customer_id)).select_for_update().first()
        if referral is None or (referral.bank_id is not None and referral.bank_id != bank_id):
            return None
        events = steps(referral.stage, target)
        if not events:
            return referral
        before = referral.stage
        for event in events:
            referral.stage = FUNNEL.next(referral.stage, event)
            stamp = f"{referral.stage}_at"
            setattr(referral, stamp, getattr(referral, stamp) or times.get(referral.stage) or clock.now())
        referral.application_id = referral.application_id or application_id
        referral.loan_id = referral.loan_id or loan_id
        if principal_fen is not None and referral.disbursed_principal_fen is None:
            referral.disbursed_principal_fen = principal_fen
        void_reason = await _broken_rule(referral) if referral.voided_at is None else None
        if void_reason:
            referral.voided_at, referral.void_reason = clock.now(), void_reason
        await referral.save()
        await audit.record(
            actor,
            "referral.void" if void_reason else "referral.advance",
            "invite_referral",
            referral.id,
            bank_id=referral.bank_id,
            before={"stage": before},
            after={"stage": referral.stage, **({"void_reason": void_reason} if void_reason else {})},
        )
        if referral.voided_at is None:
            await service.announce(referral)
    return referral


async def _records_of(customer_id: int) -> list[int]:
    """The customer's id and the ids of records merged into it (a referee may have been merged)."""
    merged = await Customer.filter(merged_into_id=customer_id).values_list("id", flat=True)
    return [customer_id, *merged]


async def _broken_rule(referral: InviteReferral) -> str | None:
    referee = await Customer.get(id=referral.referee_id)
    inviter = await service.inviter_of(referral)
    if inviter.customer is not None and inviter.customer.id == referee.id:
        return "self_referral_person"  # the referee was merged into the inviter: one person
    if service.shares_phone(referee, inviter):
        return "self_referral_phone"
    return None


# ---- outbox listeners ----------------------------------------------------------------------------


async def on_application_decided(message: OutboxMessage) -> None:
    """``lending.application_decided``: applied on any decision, approved on approval."""
    event = message.payload
    target = _DECIDED_STAGE.get(event.get("status"))
    if target is None:
        return  # withdrawn: the funnel keeps the stage it reached
    application = await Application.filter(id=event["application_id"]).first()
    times = {APPLIED: message.created_at, APPROVED: message.created_at}
    if application is not None:
        # An application decided at once is stamped decided a moment before it is stored.
        decided_at = application.decided_at or message.created_at
        times[APPLIED], times[APPROVED] = min(application.created_at, decided_at), decided_at
    await advance(event["customer_id"], event.get("bank_id", message.bank_id), target, times=times, application_id=event["application_id"])


async def on_loan_disbursed(message: OutboxMessage) -> None:
    """``loans.loan_disbursed``: disbursed (and applied and approved, if not heard of yet)."""
    event = message.payload
    principal = event.get("principal_fen", event.get("principal"))
    if principal is not None and (isinstance(principal, bool) or not isinstance(principal, int)):
        log.warning("loan_disbursed without an integer principal in fen", extra={"outbox_id": message.id})
        principal = None
    bank_id = event.get("bank_id", message.bank_id)
    # The message is written in the disbursement's own transaction: its time is the disbursement's.
    disbursed_at = _time(event.get("disbursed_at")) or message.created_at
    times = {DISBURSED: disbursed_at, APPLIED: disbursed_at, APPROVED: disbursed_at}
    approved = await _approved_application(event["customer_id"], bank_id, event.get("application_id"), event.get("contract_id"))
    if approved is not None:
        decided_at = approved.decided_at or disbursed_at
        times[APPLIED], times[APPROVED] = min(approved.created_at, decided_at), decided_at
    await advance(
        event["customer_id"],
        bank_id,
        DISBURSED,
        times=times,
        application_id=approved.id if approved else None,
        loan_id=event.get("loan_id"),
        principal_fen=principal,
    )


async def _approved_application(customer_id: int, bank_id: int | None, application_id: int | None, contract_id: int | None) -> Application | None:
    """The application a loan was drawn under: named, found through its contract, else the
    customer's latest approved one at the bank."""
    if not application_id and contract_id:
        found = await Contract.filter(id=contract_id).values_list("application_id", flat=True)
        application_id = found[0] if found else None
    query = Application.filter(customer_id=customer_id, bank_id=bank_id)
    if application_id:
        return await query.filter(id=application_id).first()
    return await query.filter(status__in=("approved", "contracted")).order_by("-decided_at").first()


def _time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None  # never a naive datetime
