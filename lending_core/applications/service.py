"""Quotes, applications and the manual-review queue.

A quote runs the whole decision on what the bank may look at without a credit-bureau pull (a
pull leaves an inquiry that rules penalise); only a submitted application, under consent, pulls
the bureau. Exposure caps, cooling-off and live-application caps count across all member banks,
so a declined applicant cannot shop the next bank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from tortoise.transactions import in_transaction

from infra import audit, clock, outbox, pii, sql
from infra.actors import Actor
from infra.errors import NotFound
from infra.identity_numbers import age_on, gender_of
from infra.money import to_fen
from infra.transitions import TransitionTable
from lending_core import access
from lending_core.applications.errors import (
    AboveModelLimit,
    ConsentsMissing,
    CoolingOff,
    RealNameRequired,
    ReviewerIsReferrer,
    TooManyLiveApplications,
)
from lending_core.applications.models import Application
from lending_core.customers import service as customers
from lending_core.decisions.engine import MANUAL_REVIEW, REJECTED, Decision, Evidence, LoanRequest, decide
from lending_core.datasources.gather import DataSources, gather
from lending_core.products import regulation
from lending_core.products import service as products
from lending_core.products.errors import RequestOutOfBounds
from lending_core.products.service import Offer
from lending_core.risk_lists import service as risk_lists

DECIDED_TOPIC = "lending.application_decided"
# In progress: counted against the product's cap on live applications.
LIVE = ("manual_review", "approved")
# Credit the customer holds or may soon hold: counted against the association's unsecured cap.
EXPOSURE = ("manual_review", "approved", "contracted")

STATUS = TransitionTable(
    "application",
    {
        ("decide_approved", "submitted"): "approved",
        ("decide_rejected", "submitted"): "rejected",
        ("decide_manual_review", "submitted"): "manual_review",
        ("approve", "manual_review"): "approved",
        ("reject", "manual_review"): "rejected",
        ("withdraw", "manual_review"): "withdrawn",
        ("withdraw", "approved"): "withdrawn",
        # Contracts take an approved application on (Contracts and servicing).
        ("contract", "approved"): "contracted",
        # Its contract was not signed in time: the approval is spent, the customer applies again.
        ("contract_expired", "contracted"): "lapsed",
    },
)


@dataclass(frozen=True)
class Quote:
    offer: Offer
    request: LoanRequest
    decision: Decision


def _check_request(offer: Offer, request: LoanRequest) -> None:
    d, problems = offer.definition, []
    ceiling = min(d.amount_yuan.max, offer.params.amount_max_yuan)
    if not d.amount_yuan.min <= request.amount_yuan <= ceiling:
        problems.append({"field": "amount_yuan", "min": d.amount_yuan.min, "max": ceiling})
    if not d.term_months.min <= request.term_months <= d.term_months.max:
        problems.append({"field": "term_months", "min": d.term_months.min, "max": d.term_months.max})
    if request.repayment_method not in d.repayment_methods:
        problems.append({"field": "repayment_method", "allowed": list(d.repayment_methods)})
    elif request.repayment_method == "bullet" and request.term_months > regulation.BULLET_MAX_MONTHS:
        problems.append({"field": "term_months", "max": regulation.BULLET_MAX_MONTHS, "why": "bullet repayment is for one year at most"})
    if problems:
        raise RequestOutOfBounds(details=problems)


@dataclass(frozen=True)
class _Case:
    """Everything the database says about one application, read in one go."""

    customer_id: int
    id_number: str
    name: str | None
    bank_id: int
    bank_code: str
    offer: Offer
    applicant: dict
    list_level: str | None
    unsecured_headroom_fen: int
    lpr_bps: int


def _in(statuses: tuple[str, ...]) -> str:
    return ", ".join(f"'{status}'" for status in statuses)


@lru_cache(maxsize=64)
def _case_sql(purposes: tuple[str, ...]) -> str:
    """One query for the whole case (a quote or an application used to make seven): the
    customer, the consents given to this bank, the relationship, list screening, unsecured
    exposure and the history that cooling-off and the live-application cap look at."""
    consents = "".join(
        f", EXISTS (SELECT 1 FROM consent k WHERE k.customer_id = c.id AND k.bank_id = b.id "
        f"AND k.revoked_at IS NULL AND k.purpose = :purpose{i}) AS consent{i}"
        for i in range(len(purposes))
    )
    unionid = "(SELECT i.value_hash FROM customer_identity i WHERE i.customer_id = c.id AND i.kind = :unionid_kind ORDER BY i.id LIMIT 1)"
    screening = risk_lists.matching_entries_sql(
        bank="b.id", at=":at", keys={"id_number_hash": ["c.id_number_hash"], "phone_hash": ["c.phone_hash"], "unionid_hash": [unionid]}
    ).replace("SELECT e.id, e.level", "SELECT e.level", 1)
    return f"""
        SELECT c.id, c.merged_into_id, c.name, c.id_number, b.code AS bank_code,
          (SELECT r.is_bank_customer FROM bank_relationship r WHERE r.customer_id = c.id AND r.bank_id = b.id) AS is_bank_customer,
          ({screening} LIMIT 1) AS list_level,
          (SELECT COALESCE(SUM(a.limit_fen), 0) FROM application a
            WHERE a.customer_id = c.id AND a.unsecured AND a.status IN ({_in(EXPOSURE)})) AS unsecured_used_fen,
          (SELECT COUNT(*) FROM application a WHERE a.customer_id = c.id AND a.status IN ({_in(LIVE)})) AS live,
          (SELECT MAX(a.decided_at) FROM application a
            WHERE a.customer_id = c.id AND a.product_id = :product AND a.status = '{REJECTED}') AS last_rejected_at
          {consents}
        FROM customer c JOIN bank b ON b.id = :bank
        WHERE c.id = :customer"""


_LIVE_SQL = f"SELECT COUNT(*) AS live FROM application WHERE customer_id = :customer AND status IN ({_in(LIVE)})"


async def _read_case(actor: Actor, code: str, request: LoanRequest, *, consents: str) -> _Case:
    bank_id = access.customer_bank(actor)
    offer = await products.offer(code, bank_id, actor.channel)
    _check_request(offer, request)
    purposes = offer.definition.consents if consents == "all" else tuple(p for p in offer.definition.consents if p != "credit_bureau")
    params = {f"purpose{i}": purpose for i, purpose in enumerate(purposes)}
    now, customer_id = clock.now(), access.as_customer_id(actor)
    while True:  # a merged record's survivor is the customer
        row = await sql.fetch_one(
            _case_sql(purposes), customer=customer_id, bank=bank_id, product=offer.product.id, at=now,
            unionid_kind=customers.WECHAT_UNIONID, **params,
        )
        if row is None:
            raise NotFound("no such customer")
        if row["merged_into_id"] is None:
            break
        customer_id = row["merged_into_id"]
    if row["id_number"] is None:
        raise RealNameRequired()
    missing = sorted(purpose for i, purpose in enumerate(purposes) if not row[f"consent{i}"])
    if missing:
        raise ConsentsMissing(details={"missing": missing})
    if consents == "all":
        _check_history(offer, live=row["live"], last_rejected_at=sql.as_datetime(row["last_rejected_at"]), now=now)
    id_number, today = pii.keyring().decrypt(row["id_number"]), clock.business_date()
    return _Case(
        customer_id=customer_id,
        id_number=id_number,
        name=pii.keyring().decrypt(row["name"]) if row["name"] else None,
        bank_id=bank_id,
        bank_code=row["bank_code"],
        offer=offer,
        applicant={"age": age_on(id_number, today), "gender": gender_of(id_number), "is_bank_customer": bool(row["is_bank_customer"])},
        list_level=row["list_level"],
        unsecured_headroom_fen=regulation.UNSECURED_CREDIT_CAP_YUAN * 100 - int(row["unsecured_used_fen"]),
        lpr_bps=await products.lpr_bps(offer.definition.pricing.lpr_term, today),
    )


async def _unsecured_exposure(customer_id: int, *, excluding: int | None = None) -> int:
    query = Application.filter(customer_id=customer_id, status__in=list(EXPOSURE), unsecured=True)
    if excluding is not None:
        query = query.exclude(id=excluding)
    return sum(await query.values_list("limit_fen", flat=True))


async def _decide(case: _Case, sources: DataSources, needed: tuple[str, ...], request: LoanRequest, *, indicative: bool) -> Decision:
    records, unavailable = await gather(sources, needed, id_number=case.id_number, person_name=case.name, bank_code=case.bank_code)
    evidence = Evidence(
        applicant=case.applicant,
        sources=records,
        unavailable=unavailable,
        list_level=case.list_level,
        unsecured_headroom_fen=case.unsecured_headroom_fen,
    )
    return decide(case.offer.definition, case.offer.params, request, evidence, lpr_bps=case.lpr_bps, indicative=indicative)


async def quote(actor: Actor, sources: DataSources, code: str, request: LoanRequest) -> Quote:
    case = await _read_case(actor, code, request, consents="without_bureau")
    needed = tuple(s for s in case.offer.definition.data_sources if s != "credit_bureau")
    return Quote(case.offer, request, await _decide(case, sources, needed, request, indicative=True))


@dataclass(frozen=True)
class Decided:
    """An application decided (its data sources asked, the bureau pulled) and not yet recorded."""

    case: _Case
    request: LoanRequest
    decision: Decision


async def decide_submission(actor: Actor, sources: DataSources, code: str, request: LoanRequest) -> Decided:
    """The slow half of an application: reading the case and asking every data source the product
    needs, the credit bureau too. Writes nothing, so it runs in no transaction (a slow bureau must
    not hold a database connection)."""
    case = await _read_case(actor, code, request, consents="all")
    return Decided(case, request, await _decide(case, sources, case.offer.definition.data_sources, request, indicative=False))


async def record_submission(actor: Actor, decided: Decided, *, referred_by_staff_id: int | None = None) -> Application:
    """The quick half: the application, its audit entry and its event, in one transaction."""
    case, request, decision = decided.case, decided.request, decided.decision
    offer = case.offer
    async with sql.atomic():
        # Lock the customer and count again: concurrent applications must not pass the cap together.
        await sql.lock_row("customer", case.customer_id)
        live = (await sql.fetch_one(_LIVE_SQL, customer=case.customer_id))["live"]
        if live >= offer.definition.max_live_applications:
            raise TooManyLiveApplications(details={"live": live})
        application = await Application.create(
            bank_id=case.bank_id,
            customer_id=case.customer_id,
            product=offer.product,
            product_version=offer.version,
            channel=actor.channel or "unknown",
            amount_fen=to_fen(request.amount_yuan),
            term_months=request.term_months,
            repayment_method=request.repayment_method,
            unsecured=offer.definition.unsecured,
            status=STATUS.next("submitted", f"decide_{decision.outcome}"),
            decision=decision.explain(),
            limit_fen=decision.limit_fen,
            rate_bps=decision.rate_bps,
            customer_reasons=list(decision.customer_reasons),
            referred_by_staff_id=referred_by_staff_id,
            decided_at=clock.now(),
        )
        await audit.record(
            actor,
            "application.submit",
            "application",
            application.id,
            bank_id=case.bank_id,
            after={"product": offer.product.code, "version": offer.version, "status": application.status, "limit_fen": decision.limit_fen},
        )
        await _announce(application)
    return application


def _check_history(offer: Offer, *, live: int, last_rejected_at, now) -> None:
    """Cooling-off and live applications count across every member bank."""
    cooling = offer.definition.cooling_off_days
    if cooling and last_rejected_at is not None and last_rejected_at > now - timedelta(days=cooling):
        raise CoolingOff(details={"apply_again_after": (last_rejected_at + timedelta(days=cooling)).date().isoformat()})
    if live >= offer.definition.max_live_applications:
        raise TooManyLiveApplications(details={"live": live})


async def _announce(application: Application) -> None:
    # Marketing advances referral funnels on it; channels tell the customer.
    await outbox.enqueue(
        DECIDED_TOPIC,
        {
            "application_id": application.id,
            "customer_id": application.customer_id,
            "bank_id": application.bank_id,
            "status": application.status,
            "channel": application.channel,
        },
        bank_id=application.bank_id,
    )


async def mine(actor: Actor, application_id: int) -> Application:
    return await access.get_for_customer(Application, actor, application_id)


def review_queue(actor: Actor):
    return access.for_staff(Application, actor, permission="applications.review").filter(status=MANUAL_REVIEW)


async def for_staff(actor: Actor, application_id: int) -> Application:
    return await access.get_for_staff(Application, actor, application_id, permission="applications.review")


async def review(actor: Actor, application_id: int, *, approve: bool, limit_yuan: int | None, note: str) -> Application:
    """A reviewer's decision on a manual-review case: approve with a limit no higher than the
    model's (senior reviewers may go higher, within the product), or reject with a reason."""
    # The note is typed by staff and may carry an ID or phone they checked; it is kept, shown to
    # staff and (on a rejection) to the customer, so it is scrubbed once, before any of that.
    note = pii.scrub_text(note)
    async with in_transaction():
        found = await for_staff(actor, application_id)
        application = await Application.filter(id=found.id).select_for_update().get()
        if application.referred_by_staff_id == actor.id:
            raise ReviewerIsReferrer()
        before = {"status": application.status, "limit_fen": application.limit_fen}
        application.status = STATUS.next(application.status, "approve" if approve else "reject")
        if approve:
            limit_fen = to_fen(limit_yuan) if limit_yuan is not None else application.limit_fen
            model_limit = application.decision.get("limit_fen", 0)
            if limit_fen > model_limit:
                if not access.allows(actor, "applications.review_above_model"):
                    raise AboveModelLimit()
            version = await products.version_definition(application.product_id, application.product_version)
            ceiling = version.amount_yuan.max * 100
            if application.unsecured:
                # The association's cap binds reviewers too, senior or not.
                headroom = regulation.UNSECURED_CREDIT_CAP_YUAN * 100 - await _unsecured_exposure(application.customer_id, excluding=application.id)
                ceiling = min(ceiling, headroom)
            if limit_fen > ceiling or limit_fen < version.amount_yuan.min * 100:
                raise RequestOutOfBounds(details=[{"field": "limit_yuan", "min": version.amount_yuan.min, "max": max(ceiling, 0) // 100}])
            application.limit_fen = limit_fen
        else:
            application.limit_fen = 0
            application.customer_reasons = [note]
        application.reviewed_by_id = int(actor.id)
        application.review_note = note
        application.decided_at = clock.now()
        await application.save()
        await audit.record(
            actor,
            "application.review",
            "application",
            application.id,
            bank_id=application.bank_id,
            before=before,
            after={"status": application.status, "limit_fen": application.limit_fen, "note": note},
        )
        await _announce(application)
    return application


def declined(actor: Actor, *, branch_id: int | None = None):
    """Secondary marketing (二次营销): declined applicants of the bank, with the reasons they
    were given, for account managers to follow up."""
    query = access.for_staff(Application, actor, permission="secondary_marketing.read").filter(status=REJECTED)
    if branch_id is not None:
        query = query.filter(customer__relationships__home_branch_id=branch_id, customer__relationships__bank_id=actor.bank_id)
    return query
