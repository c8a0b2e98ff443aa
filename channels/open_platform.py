"""The open platform for government and partner platforms: registered apps with a key and
secret, scopes, per-app rate limits, signed requests. A platform hands over an applicant with
their consent and follows the status of the applicants it referred."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from channels.models import PartnerApp, Referral
from channels.signing import security_log
from infra import audit, clock, rate_limit
from infra.actors import Actor
from infra.errors import DependencyUnavailable, InvalidInput, NotFound, PermissionDenied
from infra.identity_numbers import validate_id_number, validate_phone
from lending_core.channel_names import GOV_PLATFORM
from lending_core.customers import service as customers
from lending_core.customers.consents import CURRENT as CONSENT_TEXTS
from lending_core.applications.models import Application
from lending_core.customers.models import Consent
from lending_core.org.models import Bank
from lending_core.products import service as product_service

SCOPES = ("products:read", "applicants:write", "referrals:read")
# Consents a handover must carry: the person agreed, on the partner's platform, to these texts.
REQUIRED_CONSENTS = ("personal_information", "credit_bureau")


class ScopeMissing(PermissionDenied):
    """This partner app is not granted the scope this route needs."""


class ConsentMissing(InvalidInput):
    """A handover carries the applicant's consent to the current texts of the required purposes."""


@dataclass(frozen=True)
class Partner:
    id: int
    app_key: str
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int

    @property
    def actor(self) -> Actor:
        return Actor(kind="partner", id=self.app_key, channel=GOV_PLATFORM)


async def load_partner(app_key: str) -> tuple[str, Partner] | None:
    app = await PartnerApp.filter(app_key=app_key, is_active=True).first()
    if app is None:
        return None
    return app.secret, Partner(app.id, app.app_key, app.name, frozenset(app.scopes), app.rate_limit_per_minute)


async def admit(partner: Partner, scope: str, redis, key_prefix: str) -> None:
    """Scope first, then the app's rate limit (counted in Redis; without Redis we cannot count,
    so partner traffic is refused with 503 rather than let through unmetered)."""
    if scope not in partner.scopes:
        security_log.warning("partner scope refused", extra={"app_key": partner.app_key, "scope": scope})
        raise ScopeMissing(details={"scope": scope})
    try:
        await rate_limit.hit(redis, f"{key_prefix}rl:partner:{partner.app_key}", rate_limit.Limit(partner.rate_limit_per_minute, 60))
    except rate_limit.RateLimited:
        security_log.warning("partner over its rate limit", extra={"app_key": partner.app_key})
        raise
    except Exception:
        raise DependencyUnavailable("rate limiting is unavailable; retry shortly") from None


async def hand_over(
    partner: Partner,
    *,
    external_ref: str,
    bank_code: str,
    name: str,
    id_number: str,
    phone: str,
    consents: list[str],
    product_code: str | None,
) -> tuple[Referral, bool]:
    """Record a referred applicant (idempotent on the partner's reference). Returns the referral
    and whether it is new."""
    existing = await Referral.filter(partner_id=partner.id, external_ref=external_ref).first()
    if existing:
        return existing, False
    missing = sorted(set(REQUIRED_CONSENTS) - set(consents))
    unknown = sorted(set(consents) - set(CONSENT_TEXTS))
    if missing or unknown:
        raise ConsentMissing(details={"missing": missing, "unknown": unknown})
    id_number, phone = validate_id_number(id_number), validate_phone(phone)
    bank = await Bank.filter(code=bank_code, is_active=True).first()
    if bank is None:
        raise NotFound("no such bank")
    actor = partner.actor
    customer = await customers.find_by_id_number(id_number)
    try:
        async with in_transaction():
            if customer is None:
                customer = await customers.register(actor, name=name, id_number=id_number, phone=phone, bank_id=bank.id, channel=GOV_PLATFORM)
            else:
                await customers.relate(actor, customer, bank.id, channel=GOV_PLATFORM)
            for purpose in consents:
                text = CONSENT_TEXTS[purpose]
                await Consent.create(
                    customer=customer,
                    bank=bank,
                    purpose=purpose,
                    text_version=text.version,
                    text=text.text,
                    text_sha256=text.sha256,
                    channel=f"{GOV_PLATFORM}:{partner.app_key}",
                    granted_at=clock.now(),
                )
            referral = await Referral.create(
                partner_id=partner.id, customer=customer, bank=bank, external_ref=external_ref, product_code=product_code
            )
            await audit.record(actor, "referral.create", "referral", referral.id, bank_id=bank.id, after={"external_ref": external_ref})
    except IntegrityError:
        # The same handover arrived twice at once: the first one stands.
        return await Referral.get(partner_id=partner.id, external_ref=external_ref), False
    return referral, True


async def products(bank_code: str) -> list:
    bank = await Bank.filter(code=bank_code, is_active=True).first()
    if bank is None:
        raise NotFound("no such bank")
    return await product_service.offers(bank.id, GOV_PLATFORM)


async def referral(partner: Partner, referral_id: int) -> Referral:
    found = await Referral.filter(id=referral_id, partner_id=partner.id).first()
    if found is None:
        raise NotFound("no such referral")
    return found


def referrals(partner: Partner):
    return Referral.filter(partner_id=partner.id)


async def progress(referral: Referral) -> list[Application]:
    """What became of the referred applicant at that bank: their applications since the handover."""
    return await Application.filter(
        customer_id=referral.customer_id, bank_id=referral.bank_id, created_at__gte=referral.created_at
    ).select_related("product").order_by("id")
