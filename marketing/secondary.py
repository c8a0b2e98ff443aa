"""Secondary marketing (二次营销): declined applicants, followed up and re-invited.

The list is the lending core's (``applications.declined``: the bank's rejected applications,
with the reasons the customer was given), narrowed for an account manager to their own branch.
An applicant belongs to a branch when their relationship with the bank names it as their home
branch, or when the referral that brought them to the bank is credited to it. Marketers and bank
admins (``secondary_marketing.bank_wide``) see the whole bank and may narrow it to a branch.

Follow-ups are the account manager's notes (encrypted at rest, scrubbed of ID, phone and card
numbers when shown, audited). A re-invitation asks the applicant to look at another product of
the bank: it records who invited whom to what and queues one ``marketing.reinvite`` message in
the outbox, for the SMS or WeChat sender to deliver (no sender is registered yet: messages wait,
none is lost). It decides nothing about credit: an application that follows is decided afresh,
with its cooling-off period and caps, by the lending core.
"""

from __future__ import annotations

from datetime import date

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from infra import audit, clock, outbox
from infra.actors import Actor
from infra.errors import InvalidInput, NotFound, PermissionDenied
from lending_core import access
from lending_core.applications import service as applications
from lending_core.applications.models import Application
from lending_core.customers.models import BankRelationship
from lending_core.org import service as org
from lending_core.org.models import Branch
from lending_core.products import service as products
from marketing import service as invites
from marketing.errors import AlreadyReinvited, DoNotContact, SameProduct
from marketing.models import FOLLOW_UP_OUTCOMES, FollowUp, InviteReferral, Reinvitation

READ = "secondary_marketing.read"
BANK_WIDE = "secondary_marketing.bank_wide"
FOLLOW_UP = "secondary_marketing.follow_up"
REINVITE_TOPIC = "marketing.reinvite"
DO_NOT_CONTACT = "do_not_contact"
MAX_NOTE = 1000


async def _branch_of_caller(actor: Actor) -> int:
    staff = await org.current_staff(int(actor.id))
    if staff.branch_id is None:
        raise PermissionDenied("secondary marketing without bank-wide access is for staff of a branch")
    return staff.branch_id


def _of_branch(query, bank_id: int, branch_id: int):
    homes = BankRelationship.filter(bank_id=bank_id, home_branch_id=branch_id).values("customer_id")
    brought = InviteReferral.filter(bank_id=bank_id, branch_id=branch_id, voided_at=None).values("referee_id")
    return query.filter(Q(customer_id__in=Subquery(homes)) | Q(customer_id__in=Subquery(brought)))


async def declined(actor: Actor, *, branch_id: int | None = None):
    """Declined applicants the caller may follow up: their branch's, or (bank-wide) the bank's,
    optionally one branch's."""
    query = applications.declined(actor)
    if not access.allows(actor, BANK_WIDE):
        own = await _branch_of_caller(actor)
        if branch_id is not None and branch_id != own:
            raise NotFound("no such branch")
        branch_id = own
    elif branch_id is not None:
        branch = await access.get_for_staff(Branch, actor, branch_id, permission=READ)
        branch_id = branch.id
    if branch_id is None:
        return query
    bank_id = actor.bank_id if actor.bank_id is not None else (await Branch.get(id=branch_id)).bank_id
    return _of_branch(query, bank_id, branch_id)


async def declined_application(actor: Actor, application_id: int, *, permission: str = READ) -> Application:
    """One declined application the caller may follow up (anything else: not found)."""
    access.require(actor, permission)
    query = await declined(actor)
    found = await query.filter(id=access.as_object_id(application_id, NotFound("no such application"))).select_related("product").first()
    if found is None:
        raise NotFound("no such application")
    return found


async def follow_up_summary(application_ids: list[int]) -> dict[int, dict]:
    """For a page of the list: how many follow-ups each application has and the latest."""
    summary: dict[int, dict] = {}
    for follow_up in await FollowUp.filter(application_id__in=application_ids).order_by("id"):
        entry = summary.setdefault(follow_up.application_id, {"count": 0})
        entry.update(count=entry["count"] + 1, last_outcome=follow_up.outcome, next_contact_on=follow_up.next_contact_on, last_at=follow_up.created_at)
    return summary


def follow_ups(application: Application):
    return FollowUp.filter(application_id=application.id)


async def record_follow_up(actor: Actor, application_id: int, *, note: str, outcome: str, next_contact_on: date | None) -> FollowUp:
    application = await declined_application(actor, application_id, permission=FOLLOW_UP)
    if outcome not in FOLLOW_UP_OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(FOLLOW_UP_OUTCOMES)}", details={"field": "outcome"})
    async with in_transaction():
        follow_up = await FollowUp.create(
            bank_id=application.bank_id,
            application_id=application.id,
            customer_id=application.customer_id,
            staff_id=int(actor.id),
            note=note[:MAX_NOTE],
            outcome=outcome,
            next_contact_on=next_contact_on,
        )
        # The audit row keeps the note scrubbed of anything that looks like an ID, phone or card.
        await audit.record(
            actor,
            "secondary.follow_up",
            "application",
            application.id,
            bank_id=application.bank_id,
            after={"follow_up_id": follow_up.id, "outcome": outcome, "next_contact_on": next_contact_on.isoformat() if next_contact_on else None, "note": note},
        )
    return follow_up


async def reinvite(actor: Actor, application_id: int, *, product_code: str, channel: str) -> Reinvitation:
    """Invite a declined applicant to another product of the bank: one record and one outbox
    message, both in the same commit. Refused for the same product, twice for one product, or
    after the applicant asked not to be contacted."""
    application = await declined_application(actor, application_id, permission=FOLLOW_UP)
    offer = await products.offer(product_code, application.bank_id, None)
    if offer.product.id == application.product_id:
        raise SameProduct()
    if await FollowUp.filter(application_id=application.id, outcome=DO_NOT_CONTACT).exists():
        raise DoNotContact()
    code = await invites.my_code(actor)
    try:
        async with in_transaction():
            invitation = await Reinvitation.create(
                bank_id=application.bank_id,
                application_id=application.id,
                customer_id=application.customer_id,
                product_id=offer.product.id,
                staff_id=int(actor.id),
                invite_code_id=code.id,
                channel=channel,
            )
            await audit.record(
                actor,
                "secondary.reinvite",
                "application",
                application.id,
                bank_id=application.bank_id,
                after={"reinvitation_id": invitation.id, "product_code": offer.product.code, "channel": channel},
            )
            await outbox.enqueue(
                REINVITE_TOPIC,
                {
                    "reinvitation_id": invitation.id,
                    "customer_id": application.customer_id,
                    "bank_id": application.bank_id,
                    "product_code": offer.product.code,
                    "channel": channel,
                    "invite_code": code.code,
                    "staff_id": int(actor.id),
                    "queued_at": clock.now().isoformat(),
                },
                bank_id=application.bank_id,
            )
    except IntegrityError:
        raise AlreadyReinvited(details={"product_code": offer.product.code}) from None
    invitation.product = offer.product
    return invitation


async def reinvitation_offers(actor: Actor, application_id: int) -> list[products.Offer]:
    """What a declined applicant may be re-invited to: the bank's products but the one declined."""
    application = await declined_application(actor, application_id, permission=FOLLOW_UP)
    return [offer for offer in await products.offers(application.bank_id, None) if offer.product.id != application.product_id]


def reinvitations(application: Application):
    return Reinvitation.filter(application_id=application.id).select_related("product")
