from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock, pii
from infra.actors import Actor
from infra.errors import NotFound
from infra.identity_numbers import validate_id_number, validate_phone
from lending_core import access
from lending_core.customers.consents import CURRENT as CONSENT_TEXTS
from lending_core.customers.errors import CustomerAlreadyExists, UnknownConsentPurpose, UnknownPiiField
from lending_core.customers.models import BankRelationship, Consent, Customer, CustomerIdentity
from lending_core.org.models import Bank

UNMASKABLE = ("name", "id_number", "phone")


async def register(
    actor: Actor,
    *,
    name: str,
    id_number: str,
    phone: str,
    bank_id: int,
    channel: str,
    is_bank_customer: bool = False,
    bank_customer_no: str | None = None,
) -> Customer:
    """Create a real-name customer known to one bank (demo data, bank-channel arrivals)."""
    id_number = validate_id_number(id_number)
    phone = validate_phone(phone)
    bank = await Bank.get(id=bank_id)
    try:
        async with in_transaction():
            customer = await Customer.create(
                name=name,
                id_number=id_number,
                id_number_hash=pii.lookup_hash(pii.ID_NUMBER, id_number),
                phone=phone,
                phone_hash=pii.lookup_hash(pii.PHONE, phone),
                real_name_verified_at=clock.now(),
            )
            await CustomerIdentity.create(customer=customer, kind="id_number", issuer="cn", value_hash=customer.id_number_hash)
            if bank_customer_no:
                await CustomerIdentity.create(
                    customer=customer,
                    kind="bank_customer_no",
                    issuer=bank.code,
                    value_hash=pii.lookup_hash("bank_customer_no", bank_customer_no),
                )
            await BankRelationship.create(customer=customer, bank=bank, is_bank_customer=is_bank_customer, first_channel=channel)
            await audit.record(actor, "customer.register", "customer", customer.id, bank_id=bank_id, after=snapshot(customer))
    except IntegrityError:
        raise CustomerAlreadyExists() from None
    return customer


async def find_by_id_number(id_number: str) -> Customer | None:
    return await Customer.filter(id_number_hash=pii.lookup_hash(pii.ID_NUMBER, validate_id_number(id_number))).first()


async def profile(actor: Actor) -> tuple[Customer, list[BankRelationship]]:
    customer = await Customer.filter(id=access.as_customer_id(actor)).first()
    if customer is None:
        raise NotFound("no such customer")
    relationships = await BankRelationship.filter(customer_id=customer.id).order_by("id")
    return customer, relationships


async def grant_consent(actor: Actor, purpose: str) -> Consent:
    text = CONSENT_TEXTS.get(purpose)
    if text is None:
        raise UnknownConsentPurpose(details={"purposes": sorted(CONSENT_TEXTS)})
    bank_id = access.customer_bank(actor)
    async with in_transaction():
        consent = await Consent.create(
            customer_id=actor.id,
            bank_id=bank_id,
            purpose=purpose,
            text_version=text.version,
            text=text.text,
            text_sha256=text.sha256,
            channel=actor.channel or "unknown",
            granted_at=clock.now(),
        )
        await audit.record(
            actor, "consent.grant", "consent", consent.id, bank_id=bank_id, after={"purpose": purpose, "version": text.version}
        )
    return consent


def staff_customers(actor: Actor):
    """Customers who deal with the staff member's bank (all customers, for association staff)."""
    query = access.for_staff(Customer, actor, permission="customers.read", bank_field="relationships__bank_id")
    return query.filter(merged_into_id=None).distinct()


async def staff_customer(actor: Actor, customer_id: int) -> Customer:
    return await access.get_for_staff(Customer, actor, customer_id, permission="customers.read", bank_field="relationships__bank_id")


async def unmask(actor: Actor, customer_id: int, field: str, reason: str) -> str:
    """The clear value of one personal-data field, for a staff member allowed to see it; audited."""
    if field not in UNMASKABLE:
        raise UnknownPiiField(details={"fields": list(UNMASKABLE)})
    access.require(actor, "pii.unmask")
    customer = await staff_customer(actor, customer_id)
    await audit.record(actor, "pii.unmask", "customer", customer.id, bank_id=actor.bank_id, after={"field": field, "reason": reason})
    return getattr(customer, field) or ""


def snapshot(customer: Customer) -> dict:
    return {"name": customer.name, "id_number": customer.id_number, "phone": customer.phone}
