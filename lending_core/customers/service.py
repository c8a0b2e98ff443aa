"""One customer for the whole association, whatever door they came in by.

Identities are (kind, issuer, keyed hash of the value): a WeChat openid under its app id, a
unionid under the open platform, a bank customer number under that bank, an ID number under
"cn". Every door resolves to one record; two records found to be one person are merged into the
older one, with an audit row, and the merged record points at its survivor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from infra import audit, clock, pii
from infra.actors import Actor
from infra.errors import NotFound
from infra.identity_numbers import validate_id_number, validate_phone
from lending_core import access
from lending_core.customers.consents import CURRENT as CONSENT_TEXTS
from lending_core.customers.errors import (
    CustomerAlreadyExists,
    InvalidFirm,
    RealNameAlreadyVerified,
    RealNameMismatch,
    UnknownConsentPurpose,
    UnknownPiiField,
)
from lending_core.customers.models import BankRelationship, Consent, Customer, CustomerFirm, CustomerIdentity, Firm
from lending_core.customers.ports import IdentityVerifier, VerificationUnavailable
from lending_core.org.models import Bank

UNMASKABLE = ("name", "id_number", "phone")
REAL_NAME_FIELDS = ("name", "id_number", "id_number_hash", "phone", "phone_hash", "real_name_verified_at")
VERIFY_TIMEOUT_SECONDS = 5

WECHAT_OPENID, WECHAT_UNIONID = "wechat_openid", "wechat_unionid"
BANK_CUSTOMER_NO, ID_NUMBER, PHONE = "bank_customer_no", "id_number", "phone"
UNIONID_ISSUER, ID_ISSUER = "wechat_open_platform", "cn"


@dataclass(frozen=True)
class Arrival:
    customer: Customer
    is_new: bool


@dataclass(frozen=True)
class FirmAssertion:
    name: str
    unified_social_credit_code: str
    legal_representative: str


# ---- finding and creating ----------------------------------------------------------------


async def _live(customer: Customer | None) -> Customer | None:
    # Follow merges: a merged record's survivor is the customer.
    while customer is not None and customer.merged_into_id is not None:
        customer = await Customer.get(id=customer.merged_into_id)
    return customer


async def by_identity(kind: str, issuer: str, value: str) -> Customer | None:
    identity = await CustomerIdentity.filter(kind=kind, issuer=issuer, value_hash=pii.lookup_hash(kind, value)).first()
    return await _live(await Customer.get(id=identity.customer_id)) if identity else None


async def _add_identity(customer: Customer, kind: str, issuer: str, value: str) -> None:
    # Savepoint: a concurrent arrival may have added the same identity already.
    try:
        async with in_transaction():
            await CustomerIdentity.create(customer=customer, kind=kind, issuer=issuer, value_hash=pii.lookup_hash(kind, value))
    except IntegrityError:
        pass


async def _by_wechat(appid: str, openid: str, unionid: str | None) -> tuple[Customer | None, Customer | None]:
    """(customer by unionid, customer by openid), found in one query: logins are frequent."""
    wanted = Q(kind=WECHAT_OPENID, issuer=appid, value_hash=pii.lookup_hash(WECHAT_OPENID, openid))
    if unionid:
        wanted |= Q(kind=WECHAT_UNIONID, issuer=UNIONID_ISSUER, value_hash=pii.lookup_hash(WECHAT_UNIONID, unionid))
    found = {identity.kind: identity for identity in await CustomerIdentity.filter(wanted).select_related("customer")}
    return (
        await _live(found[WECHAT_UNIONID].customer) if WECHAT_UNIONID in found else None,
        await _live(found[WECHAT_OPENID].customer) if WECHAT_OPENID in found else None,
    )


async def arrive_by_wechat(actor: Actor, *, appid: str, openid: str, unionid: str | None) -> Arrival:
    """The customer behind a mini-program login; a new, not yet verified one on first sight."""
    by_union, by_open = await _by_wechat(appid, openid, unionid)
    if by_open is not None and (by_union is None or by_union.id == by_open.id) and (unionid is None or by_union):
        return Arrival(by_open, False)  # a returning user: nothing to write
    async with in_transaction():
        if by_union and by_open and by_union.id != by_open.id:
            await merge(actor, survivor=by_union, absorbed=by_open, reason="one WeChat user (same unionid)")
        customer = by_union or by_open
        is_new = customer is None
        if is_new:
            customer = await Customer.create()
            await audit.record(actor, "customer.create", "customer", customer.id, after={"door": "wechat_miniprogram"})
        if by_open is None:
            await _add_identity(customer, WECHAT_OPENID, appid, openid)
        if unionid and by_union is None:
            await _add_identity(customer, WECHAT_UNIONID, UNIONID_ISSUER, unionid)
    return Arrival(customer, is_new)


async def arrive_from_bank(
    actor: Actor,
    *,
    bank: Bank,
    channel: str,
    customer_no: str,
    name: str,
    id_number: str,
    phone: str,
    firm: FirmAssertion | None = None,
) -> Arrival:
    """A person the bank has identified (its app signed the assertion): a verified customer of it."""
    id_number, phone = validate_id_number(id_number), validate_phone(phone)
    customer = await by_identity(ID_NUMBER, ID_ISSUER, id_number) or await by_identity(BANK_CUSTOMER_NO, bank.code, customer_no)
    async with in_transaction():
        is_new = customer is None
        if is_new:
            customer = await _create_verified(actor, name=name, id_number=id_number, phone=phone, door=channel, bank_id=bank.id)
        elif customer.id_number_hash is None:
            # Known only by WeChat so far: the bank's identification completes the record.
            await _set_real_name(actor, customer, name=name, id_number=id_number, phone=phone)
        await _add_identity(customer, BANK_CUSTOMER_NO, bank.code, customer_no)
        await relate(actor, customer, bank.id, channel=channel, is_bank_customer=True)
        if firm is not None:
            await _link_firm(customer, bank, firm, person_name=name)
    return Arrival(customer, is_new)


async def register(
    actor: Actor,
    *,
    name: str,
    id_number: str,
    phone: str,
    bank_id: int,
    channel: str,
    is_bank_customer: bool = False,
) -> Customer:
    """Create a real-name customer known to one bank (demo data, branch counter)."""
    id_number, phone = validate_id_number(id_number), validate_phone(phone)
    try:
        async with in_transaction():
            customer = await _create_verified(actor, name=name, id_number=id_number, phone=phone, door=channel, bank_id=bank_id)
            await relate(actor, customer, bank_id, channel=channel, is_bank_customer=is_bank_customer)
    except IntegrityError:
        raise CustomerAlreadyExists() from None
    return customer


async def _create_verified(actor: Actor, *, name: str, id_number: str, phone: str, door: str, bank_id: int | None) -> Customer:
    customer = await Customer.create(
        name=name,
        id_number=id_number,
        id_number_hash=pii.lookup_hash(ID_NUMBER, id_number),
        phone=phone,
        phone_hash=pii.lookup_hash(PHONE, phone),
        real_name_verified_at=clock.now(),
    )
    await CustomerIdentity.create(customer=customer, kind=ID_NUMBER, issuer=ID_ISSUER, value_hash=customer.id_number_hash)
    await audit.record(actor, "customer.create", "customer", customer.id, bank_id=bank_id, after={**snapshot(customer), "door": door})
    return customer


async def relate(actor: Actor, customer: Customer, bank_id: int, *, channel: str, is_bank_customer: bool = False) -> BankRelationship:
    relationship = await BankRelationship.filter(customer_id=customer.id, bank_id=bank_id).first()
    if relationship is None:
        relationship = await BankRelationship.create(
            customer_id=customer.id, bank_id=bank_id, is_bank_customer=is_bank_customer, first_channel=channel
        )
        await audit.record(actor, "customer.relate", "customer", customer.id, bank_id=bank_id, after={"channel": channel})
    elif is_bank_customer and not relationship.is_bank_customer:
        relationship.is_bank_customer = True
        await relationship.save(update_fields=["is_bank_customer"])
    return relationship


async def _link_firm(customer: Customer, bank: Bank, firm: FirmAssertion, *, person_name: str) -> None:
    code = firm.unified_social_credit_code.strip().upper()
    if len(code) != 18 or not code.isalnum() or not firm.name.strip() or not firm.legal_representative.strip():
        raise InvalidFirm()
    record, _ = await Firm.get_or_create(
        unified_social_credit_code=code, defaults={"name": firm.name.strip(), "legal_representative": firm.legal_representative.strip()}
    )
    role = "legal_representative" if firm.legal_representative.strip() == person_name.strip() else "agent"
    await CustomerFirm.get_or_create(customer=customer, firm=record, defaults={"role": role, "bank": bank})


# ---- the mini-program customer's own steps --------------------------------------------------


async def choose_bank(actor: Actor, bank_id: int) -> Bank:
    customer = await current(actor)
    bank = await Bank.filter(id=bank_id, is_active=True).first()
    if bank is None:
        raise NotFound("no such bank")
    async with in_transaction():
        await relate(actor, customer, bank.id, channel=actor.channel or "unknown")
        await Customer.filter(id=customer.id).update(last_bank_id=bank.id)
    return bank


async def verify_real_name(actor: Actor, verifier: IdentityVerifier, *, name: str, id_number: str, phone: str) -> Customer:
    """Three-factor real-name verification. Returns the customer afterwards — another record if
    this person was already known through another door (the two are merged into that one)."""
    id_number, phone, name = validate_id_number(id_number), validate_phone(phone), name.strip()
    customer = await current(actor)
    id_hash = pii.lookup_hash(ID_NUMBER, id_number)
    if customer.id_number_hash is not None:
        if customer.id_number_hash != id_hash:
            raise RealNameAlreadyVerified()
        return customer
    try:
        check = await asyncio.wait_for(verifier.verify(name=name, id_number=id_number, phone=phone), VERIFY_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        raise VerificationUnavailable() from None
    if not check.matched:
        await audit.record(actor, "customer.real_name_refused", "customer", customer.id, after={"reason": check.reason})
        raise RealNameMismatch(details={"reason": check.reason})
    known = await by_identity(ID_NUMBER, ID_ISSUER, id_number)
    async with in_transaction():
        if known is not None:
            # One person, two records: the older record survives and keeps the verified identity.
            older, newer = (known, customer) if known.id < customer.id else (customer, known)
            survivor = await merge(actor, survivor=older, absorbed=newer, reason="real-name verification matched a known customer")
            await _add_identity(survivor, PHONE, ID_ISSUER, phone)
            return survivor
        await _set_real_name(actor, customer, name=name, id_number=id_number, phone=phone)
    return customer


async def _set_real_name(actor: Actor, customer: Customer, *, name: str, id_number: str, phone: str) -> None:
    before = snapshot(customer)
    customer.name, customer.id_number, customer.phone = name, id_number, phone
    customer.id_number_hash = pii.lookup_hash(ID_NUMBER, id_number)
    customer.phone_hash = pii.lookup_hash(PHONE, phone)
    customer.real_name_verified_at = clock.now()
    await customer.save()
    await CustomerIdentity.create(customer=customer, kind=ID_NUMBER, issuer=ID_ISSUER, value_hash=customer.id_number_hash)
    await audit.record(actor, "customer.real_name", "customer", customer.id, before=before, after=snapshot(customer))


async def bind_phone(actor: Actor, phone: str) -> Customer:
    """The phone WeChat vouches for (getPhoneNumber). It does not replace a verified real-name phone."""
    phone = validate_phone(phone)
    customer = await current(actor)
    async with in_transaction():
        if customer.real_name_verified_at is None:
            before = snapshot(customer)
            customer.phone, customer.phone_hash = phone, pii.lookup_hash(PHONE, phone)
            await customer.save(update_fields=["phone", "phone_hash", "updated_at"])
            await audit.record(actor, "customer.bind_phone", "customer", customer.id, before=before, after=snapshot(customer))
        await _add_identity(customer, PHONE, ID_ISSUER, phone)
    return customer


# ---- merging ----------------------------------------------------------------------------------

# Rows that belong to a customer and move with a merge: (model, customer field). Later areas
# (applications, loans, referrals…) register theirs with ``owns_customer_rows``.
_CUSTOMER_OWNED: list[tuple[type, str]] = [(CustomerIdentity, "customer_id"), (Consent, "customer_id")]


def owns_customer_rows(model: type, field: str = "customer_id") -> None:
    if (model, field) not in _CUSTOMER_OWNED:
        _CUSTOMER_OWNED.append((model, field))


async def merge(actor: Actor, *, survivor: Customer, absorbed: Customer, reason: str) -> Customer:
    """Fold ``absorbed`` into ``survivor``: its identities, consents, bank relationships, firms
    and everything registered as customer-owned move; the absorbed record points at the survivor."""
    if survivor.id == absorbed.id:
        return survivor
    async with in_transaction():
        for model, field in _CUSTOMER_OWNED:
            await model.filter(**{field: absorbed.id}).update(**{field: survivor.id})
        for relationship in await BankRelationship.filter(customer_id=absorbed.id):
            kept = await BankRelationship.filter(customer_id=survivor.id, bank_id=relationship.bank_id).first()
            if kept is None:
                await BankRelationship.filter(id=relationship.id).update(customer_id=survivor.id)
            else:
                if relationship.is_bank_customer and not kept.is_bank_customer:
                    await BankRelationship.filter(id=kept.id).update(is_bank_customer=True)
                await relationship.delete()
        for link in await CustomerFirm.filter(customer_id=absorbed.id):
            if await CustomerFirm.filter(customer_id=survivor.id, firm_id=link.firm_id).exists():
                await link.delete()
            else:
                await CustomerFirm.filter(id=link.id).update(customer_id=survivor.id)
        if survivor.last_bank_id is None and absorbed.last_bank_id is not None:
            await Customer.filter(id=survivor.id).update(last_bank_id=absorbed.last_bank_id)
        if survivor.id_number_hash is None and absorbed.id_number_hash is not None:
            # The verified identity moves too (its hash is unique: free it on the absorbed first).
            await Customer.filter(id=absorbed.id).update(id_number_hash=None)
            for name in REAL_NAME_FIELDS:
                setattr(survivor, name, getattr(absorbed, name))
            await survivor.save(update_fields=[*REAL_NAME_FIELDS, "updated_at"])
        await Customer.filter(id=absorbed.id).update(merged_into_id=survivor.id)
        await audit.record(
            actor, "customer.merge", "customer", survivor.id, before={"absorbed": absorbed.id}, after={"survivor": survivor.id, "reason": reason}
        )
    return survivor


# ---- reading -----------------------------------------------------------------------------------


async def current(actor: Actor) -> Customer:
    """The signed-in customer (the survivor, if their record has since been merged)."""
    customer = await _live(await Customer.filter(id=access.as_customer_id(actor)).first())
    if customer is None:
        raise NotFound("no such customer")
    return customer


async def find_by_id_number(id_number: str) -> Customer | None:
    return await by_identity(ID_NUMBER, ID_ISSUER, validate_id_number(id_number))


async def profile(actor: Actor) -> tuple[Customer, list[BankRelationship]]:
    customer = await current(actor)
    relationships = await BankRelationship.filter(customer_id=customer.id).order_by("id")
    return customer, relationships


async def grant_consent(actor: Actor, purpose: str) -> Consent:
    text = CONSENT_TEXTS.get(purpose)
    if text is None:
        raise UnknownConsentPurpose(details={"purposes": sorted(CONSENT_TEXTS)})
    bank_id = access.customer_bank(actor)
    customer = await current(actor)
    async with in_transaction():
        consent = await Consent.create(
            customer_id=customer.id,
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
