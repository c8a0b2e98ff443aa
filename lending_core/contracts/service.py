"""Credit contracts (授信合同): made from an approved application, signed online by every party,
with a hash-chained, notarised evidence log of everything that happens to them.

- ``make_contract`` freezes the application's terms and the product's servicing rules into a
  contract, renders its document (``rendering``) and names its parties: the borrower, and the
  guarantor / co-borrower the product requires. A party whose phone and name match a
  real-name-verified customer is bound to them; anyone else is invited by SMS and binds
  themselves later by signing in with that verified phone and the same real name.
- Signing is by a one-time SMS code (stored only as a keyed hash, limited tries, throttled
  resends) or by a certificate signature over the document hash plus a liveness check. The last
  signature makes the contract effective and opens the credit line.
- Every event (generated, viewed, signed, effective, expired) is an evidence entry written in
  the same transaction as the event, and in that transaction an outbox message is queued to
  notarise it. Right after commit the entry is offered to the notary at once; if the notary is
  down the queued message retries later. So an entry is never lost and a signature never fails
  because the notary is down; a notarised entry's message finds its receipt and does nothing.
- ``evidence_report`` is what a bank hands a court: the document hash checked against the
  stored document, the timeline, each signature, and the chain checked entry by entry against
  the notary's receipts (``evidence.verify_chain``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock, outbox, pii
from infra.actors import Actor, system
from infra.errors import NotFound
from infra.identity_numbers import InvalidPhone, validate_phone
from infra.outbox import OutboxMessage
from infra.transitions import TransitionTable
from lending_core import access
from lending_core.applications import service as applications
from lending_core.applications.models import Application
from lending_core.contracts import rendering
from lending_core.contracts.errors import (
    AlreadySigned,
    ApplicationNotApproved,
    CertificateNotSigner,
    ContractExpired,
    ContractNotFound,
    ContractNotSignable,
    InvalidParty,
    PartyIsBorrower,
    SignatoryMissing,
    SignatoryNotAllowed,
    SigningCodeExpired,
    SigningCodeLocked,
    SigningCodeNotSent,
    SigningCodeTooSoon,
    SigningCodeWrong,
    SigningMethodUnavailable,
)
from lending_core.contracts.evidence import GENESIS_HASH, EntryCheck, EvidenceEntry, entry_hash, verify_chain
from lending_core.contracts.models import Contract, ContractParty, EvidenceRecord
from lending_core.contracts.ports import (
    CertificateAuthority,
    EvidenceNotary,
    LivenessCheck,
    NotaryReceipt,
    NotaryUnavailable,
    SmsSender,
)
from lending_core.customers import service as customers
from lending_core.customers.models import Customer, CustomerIdentity
from lending_core.loans.schedule import due_date, penalty_rate_bps
from lending_core.org.models import Bank
from lending_core.products import service as products

log = logging.getLogger(__name__)

AWAITING, EFFECTIVE, EXPIRED, CANCELLED, CLOSED = "awaiting_signatures", "effective", "expired", "cancelled", "closed"
STATUS = TransitionTable(
    "contract",
    {
        ("sign_all", AWAITING): EFFECTIVE,
        ("expire", AWAITING): EXPIRED,
        ("cancel", AWAITING): CANCELLED,
        ("close", EFFECTIVE): CLOSED,
    },
)

BORROWER = "borrower"
SMS_CODE, CA_CERTIFICATE = "sms_code", "ca_certificate"
SIGNING_METHODS = (SMS_CODE, CA_CERTIFICATE)

NOTARISE_TOPIC = "contracts.notarise"
INVITE_TOPIC = "contracts.invite_party"
EFFECTIVE_TOPIC = "contracts.contract_effective"

# How long a signing or viewing customer waits for the notary before the outbox takes over.
NOTARY_WAIT_SECONDS = 3.0
_CODE_HASH_KIND = "contract_signing_code"
_PERSON_NAME = re.compile(r"[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z·. ]{0,28}[\u3400-\u9fffA-Za-z.]")

# Contracts and their parties follow a customer whose record is merged into another.
customers.owns_customer_rows(Contract)
customers.owns_customer_rows(ContractParty)


# ---- values the callers hand in ------------------------------------------------------------------


@dataclass(frozen=True)
class PartyRequest:
    """A guarantor or co-borrower as the borrower names them."""

    role: str
    name: str
    phone: str


@dataclass(frozen=True)
class Context:
    """Where a request came from: kept in the evidence of what the customer did."""

    ip: str = ""
    user_agent: str = ""
    channel: str = ""

    def evidence(self) -> dict[str, str]:
        # A user agent is free text from the device: scrub anything that looks like personal data.
        return {"ip": self.ip[:64], "user_agent": pii.scrub_text(self.user_agent)[:256], "channel": self.channel[:32]}


@dataclass(frozen=True)
class SigningPolicy:
    code_ttl_seconds: int = 300
    max_attempts: int = 5
    resend_after_seconds: int = 60


@dataclass(frozen=True)
class CertificateSignature:
    """A signature by certificate: the signature over the document hash, the chain, a liveness token."""

    signature: str
    certificate_chain: tuple[str, ...]
    liveness_token: str


@dataclass(frozen=True)
class ContractView:
    contract: Contract
    product_code: str
    parties: tuple[ContractParty, ...]
    me: ContractParty | None = None  # the caller's own party; None for staff


@dataclass(frozen=True)
class CodeSent:
    party: ContractParty
    expires_at: datetime
    resend_after_seconds: int


# ---- making a contract ---------------------------------------------------------------------------


def _object_id(value: Any) -> int:
    return access.as_object_id(value, ContractNotFound())


async def make_contract(actor: Actor, application_id: int, parties: Sequence[PartyRequest | dict], *,
                        context: Context = Context(), notary: EvidenceNotary | None = None) -> tuple[ContractView, bool]:
    """The contract of the customer's approved application, made now — or the one already made
    for it (then ``False``): asking again never makes a second contract."""
    customer = await customers.current(actor)
    try:
        return await _make_contract(actor, customer, application_id, parties, context=context, notary=notary)
    except IntegrityError:
        # A concurrent request made it first (the application has one contract: a unique key).
        existing = await Contract.filter(application_id=_object_id(application_id), customer_id=customer.id).first()
        if existing is None:
            raise
        return await _borrower_view(existing), False


async def _make_contract(actor: Actor, customer: Customer, application_id: int, parties: Sequence[PartyRequest | dict], *,
                         context: Context, notary: EvidenceNotary | None) -> tuple[ContractView, bool]:
    now = clock.now()
    async with in_transaction():
        application = await Application.filter(id=_object_id(application_id), customer_id=customer.id).select_for_update().first()
        if application is None:
            raise NotFound("no such application")
        existing = await Contract.filter(application_id=application.id).first()
        if existing is not None:
            return await _borrower_view(existing), False
        if application.status != "approved":
            raise ApplicationNotApproved(details={"status": application.status})
        definition = await products.version_definition(application.product_id, application.product_version)
        requested = _checked_parties(parties, required=definition.signatories)
        bound = await _bind_parties(customer, requested)

        bank = await Bank.get(id=application.bank_id)
        servicing = {
            "penalty_uplift_bps": definition.servicing.penalty_uplift_bps,
            "allocation": list(definition.servicing.allocation),
            "early_repayment_fee_bps": definition.servicing.early_repayment_fee_bps,
            "day_basis": definition.servicing.day_basis,
            "credit_line_months": definition.servicing.credit_line_months,
            "signing_days": definition.servicing.signing_days,
            # Whether the guarantee lets the bank settle from the guarantor's account (real-time monitoring).
            "guarantor_set_off": definition.servicing.guarantor_set_off,
        }
        contract = await Contract.create(
            bank_id=application.bank_id,
            application_id=application.id,
            customer_id=customer.id,
            product_id=application.product_id,
            product_version=application.product_version,
            template=definition.contract_template,
            limit_fen=application.limit_fen,
            rate_bps=application.rate_bps,
            penalty_rate_bps=penalty_rate_bps(application.rate_bps, definition.servicing.penalty_uplift_bps),
            term_months=application.term_months,
            repayment_method=application.repayment_method,
            collateral=definition.collateral,
            servicing=servicing,
            document_html="",
            document_sha256=GENESIS_HASH,
            status=AWAITING,
            sign_by=now + timedelta(days=definition.servicing.signing_days),
        )
        borrower = await ContractParty.create(
            contract=contract, role=BORROWER, customer_id=customer.id, name=customer.name, phone=customer.phone,
            phone_hash=customer.phone_hash, id_number_hash=customer.id_number_hash,
        )
        lines = [rendering.PartyLine(BORROWER, customer.name or "", customer.id_number)]
        others = []
        for request, match in zip(requested, bound):
            others.append(await ContractParty.create(
                contract=contract, role=request.role, customer_id=match.id if match else None, name=request.name,
                phone=request.phone, phone_hash=pii.lookup_hash(pii.PHONE, request.phone),
                id_number_hash=match.id_number_hash if match else None, invited_at=None if match else now,
            ))
            lines.append(rendering.PartyLine(request.role, request.name, match.id_number if match else None))

        terms = rendering.ContractTerms(
            contract_number=contract_number(bank.code, contract),
            template=contract.template,
            bank_name=bank.name,
            product_name=definition.name,
            product_name_en=definition.name_en,
            limit_fen=contract.limit_fen,
            rate_bps=contract.rate_bps,
            penalty_rate_bps=contract.penalty_rate_bps,
            term_months=contract.term_months,
            repayment_method=contract.repayment_method,
            collateral=contract.collateral,
            servicing=servicing,
            generated_on=clock.business_date(now),
            sign_by=clock.business_date(contract.sign_by),
            parties=tuple(lines),
        )
        contract.document_html = rendering.render(terms)
        contract.document_sha256 = rendering.document_sha256(contract.document_html)
        await contract.save(update_fields=["document_html", "document_sha256", "updated_at"])

        application.status = applications.STATUS.next(application.status, "contract")
        await application.save(update_fields=["status"])

        record = await _append(contract, "generated", now, {
            "actor": actor.label, "party_id": borrower.id, "role": BORROWER, "application_id": application.id,
            "product_version": contract.product_version, "template": contract.template, **context.evidence(),
        })
        for party in others:
            # Bound customers are told too; the invited learn of the contract only this way.
            await outbox.enqueue(INVITE_TOPIC, {"party_id": party.id, "contract_id": contract.id}, bank_id=contract.bank_id)
        await audit.record(actor, "contract.generate", "contract", contract.id, bank_id=contract.bank_id, after={
            "application_id": application.id, "status": contract.status, "limit_fen": contract.limit_fen,
            "rate_bps": contract.rate_bps, "document_sha256": contract.document_sha256,
            "parties": [{"role": p.role, "bound": p.customer_id is not None} for p in (borrower, *others)],
        })
    await _notarise_now(notary, [record])
    return await _borrower_view(contract), True


async def _borrower_view(contract: Contract) -> ContractView:
    parties = await ContractParty.filter(contract_id=contract.id).order_by("id")
    me = next((p for p in parties if p.role == BORROWER), None)
    return ContractView(contract, await _product_code(contract), tuple(parties), me)


def contract_number(bank_code: str, contract: Contract) -> str:
    return f"{bank_code}-{clock.business_date(contract.created_at or clock.now()):%Y%m%d}-{contract.id:06d}"


def _normal_name(name: str | None) -> str:
    return "".join(unicodedata.normalize("NFKC", name or "").split()).casefold()


def _checked_parties(parties: Sequence[PartyRequest | dict], *, required: Sequence[str]) -> list[PartyRequest]:
    """The parties, validated: each role the product requires exactly once, nothing else, real
    names and mainland mobiles, no phone twice."""
    requests = [p if isinstance(p, PartyRequest) else PartyRequest(**p) for p in parties]
    roles = [p.role for p in requests]
    unexpected = sorted({role for role in roles if role not in required} | {role for role in roles if roles.count(role) > 1})
    if unexpected:
        raise SignatoryNotAllowed(details={"roles": unexpected, "allowed": list(required)})
    missing = [role for role in required if role not in roles]
    if missing:
        raise SignatoryMissing(details={"missing": missing})
    problems, checked, seen = [], [], set()
    for index, request in enumerate(requests):
        name = unicodedata.normalize("NFKC", request.name or "").strip()
        if not _PERSON_NAME.fullmatch(name):
            problems.append({"index": index, "role": request.role, "field": "name", "problem": "not a person's name"})
        try:
            phone = validate_phone(request.phone)
        except (InvalidPhone, TypeError):
            problems.append({"index": index, "role": request.role, "field": "phone", "problem": "not a mainland mobile number"})
            continue
        if phone in seen:
            problems.append({"index": index, "role": request.role, "field": "phone", "problem": "given for two parties"})
        seen.add(phone)
        checked.append(PartyRequest(request.role, name, phone))
    if problems:
        raise InvalidParty(details=problems)
    return checked


async def _verified_phone_hashes(customer: Customer) -> set[str]:
    """Phones this customer has proved: the real-name phone and phones WeChat vouched for."""
    if customer.real_name_verified_at is None:
        return set()
    found = set(await CustomerIdentity.filter(customer_id=customer.id, kind=customers.PHONE).values_list("value_hash", flat=True))
    return found | ({customer.phone_hash} if customer.phone_hash else set())


async def _bind_parties(borrower: Customer, requests: list[PartyRequest]) -> list[Customer | None]:
    """For each party, the verified customer with that phone and name, if there is one."""
    borrower_phones = await _verified_phone_hashes(borrower) | ({borrower.phone_hash} if borrower.phone_hash else set())
    found: list[Customer | None] = []
    for index, request in enumerate(requests):
        phone_hash = pii.lookup_hash(pii.PHONE, request.phone)
        if phone_hash in borrower_phones:
            raise PartyIsBorrower(details={"index": index, "role": request.role})
        holders = await Customer.filter(phone_hash=phone_hash, merged_into_id=None, real_name_verified_at__isnull=False)
        # A different name under the phone binds no one: the person proves themselves when signing.
        same = [c for c in holders if _normal_name(c.name) == _normal_name(request.name)]
        if any(c.id == borrower.id for c in same):
            raise PartyIsBorrower(details={"index": index, "role": request.role})
        found.append(same[0] if len(same) == 1 else None)
    return found


# ---- who is asking -----------------------------------------------------------------------------


async def _party_of(customer: Customer, parties: Sequence[ContractParty]) -> ContractParty | None:
    for party in parties:
        if party.customer_id == customer.id:
            return party
    phones = await _verified_phone_hashes(customer)
    for party in parties:
        if party.customer_id is None and party.phone_hash in phones and _normal_name(party.name) == _normal_name(customer.name):
            return party
    return None


async def _contract_for_party(actor: Actor, contract_id: Any, *, lock: bool) -> tuple[Contract, ContractParty, list[ContractParty], Customer]:
    customer = await customers.current(actor)
    query = Contract.filter(id=_object_id(contract_id))
    contract = await (query.select_for_update() if lock else query).first()
    if contract is None:
        raise ContractNotFound()
    parties = await ContractParty.filter(contract_id=contract.id).order_by("id")
    party = await _party_of(customer, parties)
    if party is None:
        raise ContractNotFound()
    return contract, party, parties, customer


def _bind(party: ContractParty, customer: Customer) -> list[str]:
    """An invited party proved to be ``customer``: remember it. Returns the fields changed."""
    if party.customer_id is not None:
        return []
    party.customer_id = customer.id
    party.id_number_hash = customer.id_number_hash
    return ["customer_id", "id_number_hash"]


async def _product_code(contract: Contract) -> str:
    await contract.fetch_related("product")
    return contract.product.code


# ---- reading -------------------------------------------------------------------------------------


async def view(actor: Actor, contract_id: int, *, context: Context = Context(),
               notary: EvidenceNotary | None = None) -> ContractView:
    """A party reads the contract: recorded as a "viewed" evidence entry."""
    now = clock.now()
    async with in_transaction():
        contract, party, parties, _ = await _contract_for_party(actor, contract_id, lock=True)
        record = await _append(contract, "viewed", now, {
            "actor": actor.label, "party_id": party.id, "role": party.role, **context.evidence(),
        })
    await _notarise_now(notary, [record])
    return ContractView(contract, await _product_code(contract), tuple(parties), party)


async def staff_view(actor: Actor, contract_id: int) -> ContractView:
    """Staff of the contract's bank read it (audited; staff views are not contract events)."""
    contract = await _staff_contract(actor, contract_id)
    await audit.record(actor, "contract.view", "contract", contract.id, bank_id=contract.bank_id)
    parties = await ContractParty.filter(contract_id=contract.id).order_by("id")
    return ContractView(contract, await _product_code(contract), tuple(parties))


async def _staff_contract(actor: Actor, contract_id: Any) -> Contract:
    try:
        return await access.get_for_staff(Contract, actor, _object_id(contract_id), permission="contracts.read")
    except NotFound:
        raise ContractNotFound() from None


async def contracts_for(actor: Actor) -> list[tuple[Contract, ContractParty]]:
    """The customer's contracts, each with the capacity they hold in it (borrower, guarantor,
    co-borrower) — including contracts they are invited to under a phone they have verified."""
    customer = await customers.current(actor)
    mine = await ContractParty.filter(customer_id=customer.id).order_by("contract_id")
    phones = await _verified_phone_hashes(customer)
    if phones:
        invited = await ContractParty.filter(customer_id=None, phone_hash__in=sorted(phones)).order_by("contract_id")
        mine += [p for p in invited if _normal_name(p.name) == _normal_name(customer.name)]
    contracts = {c.id: c for c in await Contract.filter(id__in=sorted({p.contract_id for p in mine})).select_related("product")}
    return sorted(((contracts[p.contract_id], p) for p in mine), key=lambda pair: (-pair[0].id, pair[1].id))


# ---- signing -------------------------------------------------------------------------------------


def _check_signable(contract: Contract, party: ContractParty, now: datetime) -> None:
    if party.signed_at is not None:
        raise AlreadySigned(details={"signed_at": party.signed_at.isoformat()})
    if contract.status == EXPIRED or (contract.status == AWAITING and now > contract.sign_by):
        raise ContractExpired(details={"sign_by": contract.sign_by.isoformat()})
    if contract.status != AWAITING:
        raise ContractNotSignable(details={"status": contract.status})


def _code_hash(contract_id: int, party_id: int, code: str) -> str:
    # Keyed (the PII lookup key): a copy of the table alone does not give the code away.
    return pii.lookup_hash(_CODE_HASH_KIND, f"{contract_id}:{party_id}:{code}")


async def send_code(actor: Actor, contract_id: int, *, sms: SmsSender, policy: SigningPolicy = SigningPolicy()) -> CodeSent:
    """Text a one-time signing code to the party's phone. Only its keyed hash is kept; a new
    code replaces the last one and resets the tries."""
    now = clock.now()
    code = f"{secrets.randbelow(10**6):06d}"
    async with in_transaction():
        contract, party, _, customer = await _contract_for_party(actor, contract_id, lock=True)
        _check_signable(contract, party, now)
        if party.code_hash is not None and party.code_expires_at is not None:
            sent_at = party.code_expires_at - timedelta(seconds=policy.code_ttl_seconds)
            wait = (sent_at + timedelta(seconds=policy.resend_after_seconds) - now).total_seconds()
            if wait > 0:
                raise SigningCodeTooSoon(retry_after=max(1, int(wait) + 1))
        changed = _bind(party, customer)
        party.code_hash = _code_hash(contract.id, party.id, code)
        party.code_expires_at = now + timedelta(seconds=policy.code_ttl_seconds)
        party.code_attempts = 0
        await party.save(update_fields=["code_hash", "code_expires_at", "code_attempts", *changed])
        await audit.record(actor, "contract.signing_code", "contract", contract.id, bank_id=contract.bank_id,
                           after={"party_id": party.id, "role": party.role})
        bank = await Bank.get(id=contract.bank_id)
    text = (f"【{bank.name}】您正在签署借款合同（编号{contract_number(bank.code, contract)}），"
            f"签署验证码 {code}，{max(1, policy.code_ttl_seconds // 60)} 分钟内有效。请勿将验证码告诉任何人。")
    try:
        await sms.send(party.phone, text)
    except Exception:
        # Not sent: forget the code so the customer can ask again at once.
        await ContractParty.filter(id=party.id, code_hash=party.code_hash).update(code_hash=None, code_expires_at=None)
        raise
    return CodeSent(party, party.code_expires_at, policy.resend_after_seconds)


def _code_refusal(contract: Contract, party: ContractParty, code: str | None, now: datetime, policy: SigningPolicy):
    """Why ``code`` does not sign (an error to raise), or None. A wrong code counts a try."""
    if party.code_hash is None:
        return SigningCodeNotSent()
    if party.code_attempts >= policy.max_attempts:
        return SigningCodeLocked(details={"attempts_left": 0})
    if party.code_expires_at is None or now >= party.code_expires_at:
        return SigningCodeExpired()
    if not isinstance(code, str) or not hmac.compare_digest(party.code_hash, _code_hash(contract.id, party.id, code)):
        party.code_attempts += 1
        return SigningCodeWrong(details={"attempts_left": max(0, policy.max_attempts - party.code_attempts)})
    return None


async def sign(actor: Actor, contract_id: int, *, method: str, code: str | None = None,
               certificate: CertificateSignature | None = None, context: Context = Context(),
               policy: SigningPolicy = SigningPolicy(), notary: EvidenceNotary | None = None,
               certificate_authority: CertificateAuthority | None = None,
               liveness: LivenessCheck | None = None) -> ContractView:
    """The caller signs as the party they are. The last signature makes the contract effective."""
    if method not in SIGNING_METHODS:
        raise SigningMethodUnavailable(details={"methods": list(SIGNING_METHODS)})
    now = clock.now()
    proof: dict[str, str] = {}
    if method == CA_CERTIFICATE:
        # Outside parties are asked before any lock is taken; the state is checked again under it.
        if certificate_authority is None or liveness is None:
            raise SigningMethodUnavailable()
        if certificate is None:
            raise SigningMethodUnavailable("a certificate signature needs the signature, the chain and a liveness token")
        contract, party, _, customer = await _contract_for_party(actor, contract_id, lock=False)
        _check_signable(contract, party, now)
        signer = await certificate_authority.verify(contract.document_sha256, certificate.signature,
                                                    certificate.certificate_chain, at=now)
        if (customer.id_number_hash is None
                or pii.lookup_hash(pii.ID_NUMBER, signer.subject_id_number) != customer.id_number_hash
                or _normal_name(signer.subject_name) != _normal_name(customer.name)):
            raise CertificateNotSigner()
        checked = await liveness.verify(certificate.liveness_token, customer_id=customer.id)
        proof = {"certificate_serial": signer.serial, "certificate_issuer": signer.issuer,
                 "certificate_sha256": signer.fingerprint_sha256, "liveness_check_id": checked.check_id}

    refusal = None
    records: list[EvidenceRecord] = []
    async with in_transaction():
        contract, party, parties, customer = await _contract_for_party(actor, contract_id, lock=True)
        _check_signable(contract, party, now)
        if method == SMS_CODE:
            refusal = _code_refusal(contract, party, code, now, policy)
            if isinstance(refusal, SigningCodeWrong):
                await party.save(update_fields=["code_attempts"])
                await audit.record(actor, "contract.signing_code_wrong", "contract", contract.id, bank_id=contract.bank_id,
                                   after={"party_id": party.id, "attempts": party.code_attempts})
        if refusal is None:
            records = await _record_signature(actor, contract, party, parties, customer, method, proof, context, now)
    if refusal is not None:
        raise refusal
    await _notarise_now(notary, records)
    parties = await ContractParty.filter(contract_id=contract.id).order_by("id")
    me = next(p for p in parties if p.id == party.id)
    return ContractView(contract, await _product_code(contract), tuple(parties), me)


async def _record_signature(actor: Actor, contract: Contract, party: ContractParty, parties: Sequence[ContractParty],
                            customer: Customer, method: str, proof: dict[str, str], context: Context,
                            now: datetime) -> list[EvidenceRecord]:
    changed = _bind(party, customer)
    party.signed_at = now
    party.signature_method = method
    party.signature_detail = {"method": method, **proof}
    party.code_hash, party.code_expires_at, party.code_attempts = None, None, 0
    await party.save(update_fields=["signed_at", "signature_method", "signature_detail", "code_hash",
                                    "code_expires_at", "code_attempts", *changed])
    records = [await _append(contract, "signed", now, {
        "actor": actor.label, "party_id": party.id, "role": party.role, "customer_id": customer.id,
        "signature_method": method, **proof, **context.evidence(),
    })]
    await audit.record(actor, "contract.sign", "contract", contract.id, bank_id=contract.bank_id,
                       after={"party_id": party.id, "role": party.role, "method": method})
    unsigned = [p for p in parties if p.id != party.id and p.signed_at is None]
    if not unsigned:
        before = contract.status
        contract.status = STATUS.next(contract.status, "sign_all")
        contract.effective_at = now
        contract.line_expires_on = due_date(clock.business_date(now), int(contract.servicing["credit_line_months"]))
        await contract.save(update_fields=["status", "effective_at", "line_expires_on", "updated_at"])
        records.append(await _append(contract, "effective", now, {
            "actor": system("contracts").label, "parties": len(parties),
            "line_expires_on": contract.line_expires_on.isoformat(),
        }))
        await outbox.enqueue(EFFECTIVE_TOPIC, {
            "contract_id": contract.id, "customer_id": contract.customer_id, "bank_id": contract.bank_id,
            "application_id": contract.application_id, "limit_fen": contract.limit_fen,
            "line_expires_on": contract.line_expires_on.isoformat(),
        }, bank_id=contract.bank_id)
        await audit.record(actor, "contract.effective", "contract", contract.id, bank_id=contract.bank_id,
                           before={"status": before}, after={"status": contract.status,
                                                              "line_expires_on": contract.line_expires_on.isoformat()})
    return records


# ---- expiry --------------------------------------------------------------------------------------


async def expire_unsigned(now: datetime) -> int:
    """Contracts still awaiting signatures after their ``sign_by`` expire; their applications
    lapse (the approval is spent: the customer applies again). Returns how many expired. Safe
    to run twice: an expired contract is not looked at again."""
    actor = system("contracts.expire_unsigned")
    due = await Contract.filter(status=AWAITING, sign_by__lt=now).order_by("id").values_list("id", flat=True)
    expired = 0
    for contract_id in due:
        async with in_transaction():
            contract = await Contract.filter(id=contract_id, status=AWAITING, sign_by__lt=now).select_for_update().first()
            if contract is None:
                continue  # signed or expired meanwhile
            contract.status = STATUS.next(contract.status, "expire")
            await contract.save(update_fields=["status", "updated_at"])
            unsigned = await ContractParty.filter(contract_id=contract.id, signed_at__isnull=True).values_list("role", flat=True)
            await _append(contract, "expired", now, {"actor": actor.label, "unsigned_roles": ",".join(sorted(unsigned))})
            application = await Application.filter(id=contract.application_id).select_for_update().get()
            if application.status == "contracted":
                application.status = applications.STATUS.next(application.status, "contract_expired")
                await application.save(update_fields=["status"])
            await audit.record(actor, "contract.expire", "contract", contract.id, bank_id=contract.bank_id,
                               before={"status": AWAITING}, after={"status": contract.status, "application_status": application.status})
        expired += 1
    return expired


# ---- evidence ------------------------------------------------------------------------------------


def _entry_of(record: EvidenceRecord) -> EvidenceEntry:
    return EvidenceEntry(
        sequence=record.sequence,
        contract_id=record.contract_id,
        kind=record.kind,
        occurred_at=record.occurred_at,
        document_sha256=record.document_sha256,
        detail=record.detail,
        previous_hash=record.previous_hash,
    )


async def _append(contract: Contract, kind: str, at: datetime, detail: dict) -> EvidenceRecord:
    """Add an entry to the contract's log and queue it for the notary. The caller holds the
    contract's row lock, so entries are numbered one at a time."""
    last = await EvidenceRecord.filter(contract_id=contract.id).order_by("-sequence").first()
    entry = EvidenceEntry(
        sequence=1 if last is None else last.sequence + 1,
        contract_id=contract.id,
        kind=kind,
        occurred_at=at,
        document_sha256=contract.document_sha256,
        detail=detail,
        # Linked to the hash recorded when the entry before was written.
        previous_hash=GENESIS_HASH if last is None else last.entry_hash,
    )
    record = await EvidenceRecord.create(
        contract_id=contract.id, sequence=entry.sequence, kind=entry.kind, occurred_at=entry.occurred_at,
        document_sha256=entry.document_sha256, detail=entry.detail, previous_hash=entry.previous_hash,
        entry_hash=entry_hash(entry),
    )
    await outbox.enqueue(NOTARISE_TOPIC, {"evidence_record_id": record.id, "contract_id": contract.id}, bank_id=contract.bank_id)
    return record


async def notarise_record(notary: EvidenceNotary, record_id: int) -> bool:
    """Have the notary sign the entry's hash and keep the receipt beside it. ``False`` if there
    was nothing to do (already notarised, gone, or changed since it was written — never
    notarise a changed entry). Raises ``NotaryUnavailable`` if the notary does not answer."""
    record = await EvidenceRecord.filter(id=record_id).first()
    if record is None or record.receipt is not None:
        return False
    try:
        recomputed = entry_hash(_entry_of(record))
    except ValueError:
        recomputed = None
    if recomputed != record.entry_hash:
        log.error("evidence entry changed before it was notarised", extra={"contract_id": record.contract_id, "sequence": record.sequence})
        return False
    receipt = await notary.notarise(record.entry_hash)
    await EvidenceRecord.filter(id=record.id, receipt__isnull=True).update(receipt=receipt.as_dict())
    return True


async def _notarise_now(notary: EvidenceNotary | None, records: Sequence[EvidenceRecord]) -> None:
    if notary is None:
        return  # the queued outbox messages will
    for record in records:
        try:
            await asyncio.wait_for(notarise_record(notary, record.id), NOTARY_WAIT_SECONDS)
        except (NotaryUnavailable, asyncio.TimeoutError):
            log.warning("evidence notary unavailable: entry queued for retry",
                        extra={"contract_id": record.contract_id, "sequence": record.sequence})
            return  # the rest are queued as well; do not make the customer wait for each


def notarise_handler(notary: EvidenceNotary):
    """The outbox handler of ``NOTARISE_TOPIC``: retries until the notary has signed the entry."""

    async def handle(message: OutboxMessage) -> None:
        await notarise_record(notary, int(message.payload["evidence_record_id"]))

    return handle


def invite_handler(sms: SmsSender):
    """The outbox handler of ``INVITE_TOPIC``: texts a guarantor or co-borrower that a contract
    waits for their signature in the mini-program."""

    async def handle(message: OutboxMessage) -> None:
        party = await ContractParty.filter(id=int(message.payload["party_id"])).first()
        if party is None or party.signed_at is not None:
            return
        contract = await Contract.get(id=party.contract_id)
        if contract.status != AWAITING:
            return
        bank = await Bank.get(id=contract.bank_id)
        borrower = await ContractParty.filter(contract_id=contract.id, role=BORROWER).first()
        role_cn, _ = rendering.ROLES.get(party.role, (party.role, party.role))
        await sms.send(party.phone, (
            f"【{bank.name}】{pii.mask_name(borrower.name if borrower else '')}邀请您作为{role_cn}签署借款合同"
            f"（编号{contract_number(bank.code, contract)}），请于{clock.business_date(contract.sign_by).isoformat()}前"
            f"打开微信小程序“{bank.name}”，登录并以本手机号完成实名认证后查看并签署。"
        ))

    return handle


@dataclass(frozen=True)
class SignatureLine:
    party_id: int
    role: str
    name: str  # masked
    signed_at: datetime | None
    method: str | None
    ip: str | None
    channel: str | None
    sequence: int | None  # of the "signed" evidence entry


@dataclass(frozen=True)
class TimelineEntry:
    sequence: int
    kind: str
    occurred_at: datetime
    detail: dict
    document_sha256: str
    previous_hash: str
    stored_hash: str
    recomputed_hash: str | None
    receipt: dict | None
    link_ok: bool
    receipt_ok: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceReport:
    contract_id: int
    contract_number: str
    status: str
    document_sha256: str  # as recorded when the contract was made
    recomputed_document_sha256: str  # of the document as stored now
    document_ok: bool
    timeline: tuple[TimelineEntry, ...]
    signatures: tuple[SignatureLine, ...]
    ok: bool
    first_failure: str | None
    first_failed_sequence: int | None
    problems: tuple[str, ...] = field(default_factory=tuple)  # problems of no one entry


async def evidence_report(actor: Actor, contract_id: int, *, notary: EvidenceNotary) -> EvidenceReport:
    """The evidence of a contract, checked: for its parties and for staff of its bank."""
    if actor.kind == "staff":
        contract = await _staff_contract(actor, contract_id)
        await audit.record(actor, "contract.evidence_report", "contract", contract.id, bank_id=contract.bank_id)
    else:
        contract, *_ = await _contract_for_party(actor, contract_id, lock=False)
    bank = await Bank.get(id=contract.bank_id)
    parties = await ContractParty.filter(contract_id=contract.id).order_by("id")
    records = await EvidenceRecord.filter(contract_id=contract.id).order_by("sequence", "id")
    return build_report(contract, bank.code, parties, records, notary.public_key)


def build_report(contract: Contract, bank_code: str, parties: Sequence[ContractParty],
                 records: Sequence[EvidenceRecord], public_key) -> EvidenceReport:
    recomputed_document = rendering.document_sha256(contract.document_html)
    document_ok = recomputed_document == contract.document_sha256
    entries, receipts, own_problems = [], {}, {}
    for record in records:
        problems = own_problems.setdefault(record.sequence, [])
        where = f"entry {record.sequence}"
        try:
            entry = _entry_of(record)
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: cannot be read as an evidence entry ({exc})")
            continue
        entries.append(entry)
        if entry_hash(entry) != record.entry_hash:
            problems.append(f"{where}: the recorded hash does not match the entry as stored")
        if record.document_sha256 != contract.document_sha256:
            problems.append(f"{where}: is about another document than the contract's")
        if record.receipt is not None:
            try:
                receipts[record.sequence] = NotaryReceipt.from_dict(record.receipt)
            except (KeyError, ValueError, TypeError):
                problems.append(f"{where}: the stored notary receipt cannot be read")
    chain = verify_chain(entries, receipts, public_key)
    checks: dict[int, EntryCheck] = {check.sequence: check for check in chain.checks}

    timeline, failures = [], []
    for record in records:
        check = checks.get(record.sequence)
        problems = tuple([*(check.problems if check else ()), *own_problems.get(record.sequence, [])])
        if problems:
            failures.append((record.sequence, problems[0]))
        timeline.append(TimelineEntry(
            sequence=record.sequence, kind=record.kind, occurred_at=record.occurred_at, detail=dict(record.detail or {}),
            document_sha256=record.document_sha256, previous_hash=record.previous_hash, stored_hash=record.entry_hash,
            recomputed_hash=check.entry_hash if check else None, receipt=record.receipt,
            link_ok=bool(check and check.link_ok), receipt_ok=bool(check and check.receipt_ok), problems=problems,
        ))

    signed_entries = {}
    for record in records:
        if record.kind == "signed" and isinstance(record.detail, dict) and "party_id" in record.detail:
            signed_entries.setdefault(record.detail["party_id"], record)
    signatures, general = [], list(chain.chain_problems)
    for party in parties:
        entry = signed_entries.get(party.id)
        if party.signed_at is not None and entry is None:
            general.append(f"the {party.role}'s signature has no evidence entry")
        signatures.append(SignatureLine(
            party_id=party.id, role=party.role, name=pii.mask_name(party.name), signed_at=party.signed_at,
            method=party.signature_method, ip=entry.detail.get("ip") if entry else None,
            channel=entry.detail.get("channel") if entry else None, sequence=entry.sequence if entry else None,
        ))
    if contract.status == EFFECTIVE and not any(r.kind == "effective" for r in records):
        general.append("the contract is effective but no evidence entry says so")

    document_problem = None if document_ok else (
        f"document: the stored document's SHA-256 {recomputed_document} is not the recorded {contract.document_sha256}")
    first_failure = document_problem or (failures[0][1] if failures else None) or (general[0] if general else None)
    return EvidenceReport(
        contract_id=contract.id,
        contract_number=contract_number(bank_code, contract),
        status=contract.status,
        document_sha256=contract.document_sha256,
        recomputed_document_sha256=recomputed_document,
        document_ok=document_ok,
        timeline=tuple(timeline),
        signatures=tuple(signatures),
        ok=first_failure is None,
        first_failure=first_failure,
        first_failed_sequence=failures[0][0] if failures else None,
        problems=tuple(general),
    )
