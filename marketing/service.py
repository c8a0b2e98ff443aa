"""Invite codes, scans and binding a referee to the person who invited them.

A code is seen many times (scans, opens, the ``scene`` of a login): each is a touch. When a new
customer arrives with a code, they are bound once and for good to the inviter of their *first*
touch within the window — the code they happened to log in with may be a later one. The binding
rules (``BindingRules``) are parameters, so a campaign can bring its own; the defaults are the
association's. Refusals are domain errors (``ReferralRefused``); the login path records them as
an outcome rather than failing the login.

Personal data: a device id (an install id the mini-program keeps in its storage) and an IP address
are not ID numbers, phones or names, but they single a person out, so neither is stored: the
device as a keyed hash (``pii.lookup_hash``, so equal devices match and nothing can be reversed or
joined without our key), the IP address only as the keyed hash of its /24 (IPv4) or /48 (IPv6)
network — enough to see many referees arriving from one place, not to name one subscriber. Rate
limits key Redis counters on the keyed hash of the full address; those expire within a day.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from infra import audit, clock, outbox, pii, rate_limit, sql
from infra.actors import Actor
from infra.errors import DependencyUnavailable, NotFound
from infra.rate_limit import Limit, RateLimited
from lending_core.applications.models import Application
from lending_core.customers import service as customers
from lending_core.customers.models import BankRelationship, Customer
from lending_core.org.models import Bank, Staff
from lending_core.org import service as org
from lending_core.products import service as products
from lending_core.products.errors import ProductNotFound
from lending_core.products.models import Product
from marketing import codes
from marketing.errors import (
    NoInviteCodeForActor,
    NotANewCustomer,
    ReferralLoop,
    ReferralRefused,
    ScanCountingUnavailable,
    SelfReferral,
    UnknownInviteCode,
)
from marketing.models import CUSTOMER, STAFF, InviteCode, InviteReferral, InviteTouch, KnownDevice, WxaCodeImage
from marketing.ports import MiniProgramCodes
from marketing.qr import PosterText

log = logging.getLogger(__name__)

# Lookup-hash domains: the same value hashes differently as a device and as an address.
DEVICE, NETWORK, ADDRESS = "device_id", "ip_network", "ip_address"
SCAN_CHANNELS = ("wxacode", "qr", "poster", "share_card", "link")
LOGIN = "login"

# Rewards (a later part) listen here: one message per stage a referral reaches, after commit.
REFERRAL_TOPIC = "marketing.referral_advanced"
REGISTERED = "registered"


@dataclass(frozen=True)
class ScanLimits:
    """Scans a device and an address may record, per window. An address is shared by everyone
    behind a carrier's NAT, so its limits are looser than a device's."""

    per_device: tuple[Limit, ...] = (Limit(10, 60), Limit(100, 24 * 3600))
    per_address: tuple[Limit, ...] = (Limit(60, 60), Limit(2000, 24 * 3600))


@dataclass(frozen=True)
class BindingRules:
    """When a person is attributed to an inviter. A campaign may hand in its own."""

    # Only touches this recent count; the earliest of them names the inviter.
    touch_window: timedelta = timedelta(days=30)
    # Only people new to us: no application yet, not a known customer of a bank, and arrived
    # (their record created) after their first touch — less a grace for the order in which the
    # mini-program reports the scan and logs in.
    new_customers_only: bool = True
    arrival_grace: timedelta = timedelta(minutes=10)
    # A referee on a device the inviter has used, or with the inviter's phone, is the inviter. And
    # (with new customers only) a referee on a device another customer already uses is not new: a
    # phone brings one person in, however many accounts it opens (a reward farm runs many on each).
    same_device_is_self: bool = True
    same_phone_is_self: bool = True
    # How far up a chain of referrals to look for a loop.
    max_chain: int = 100


DEFAULT_SCAN_LIMITS = ScanLimits()
DEFAULT_RULES = BindingRules()


# ---- personal data -------------------------------------------------------------------------------


def device_hash(device_id: str | None) -> str | None:
    return pii.lookup_hash(DEVICE, device_id) if device_id else None


def _address(ip: str | None):
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address


def network_hash(ip: str | None) -> str | None:
    address = _address(ip)
    if address is None:
        return None
    network = ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 48}", strict=False)
    return pii.lookup_hash(NETWORK, str(network))


def address_hash(ip: str | None) -> str | None:
    address = _address(ip)
    return pii.lookup_hash(ADDRESS, str(address)) if address is not None else None


# ---- codes ---------------------------------------------------------------------------------------


async def my_code(actor: Actor, *, device_id: str | None = None) -> InviteCode:
    """The caller's invite code, made on first ask (asking again, or twice at once, gives the same).
    The device asking is remembered as the inviter's own: a referee on it would be the inviter."""
    if actor.kind in (CUSTOMER, STAFF):
        await note_device(actor.kind, int(actor.id), device_id)
    if actor.kind == CUSTOMER:
        customer = await customers.current(actor)
        bank_id = actor.bank_id or customer.last_bank_id
        found = await InviteCode.filter(customer_id=customer.id).first()
        if found is not None:
            if found.bank_id is None and bank_id is not None:
                # Asked before any bank was chosen: the first bank since is the one it brings people to.
                await InviteCode.filter(id=found.id, bank_id=None).update(bank_id=bank_id)
                found.bank_id = bank_id
            return found
        return await _create(actor, {"customer_id": customer.id}, owner_kind=CUSTOMER, bank_id=bank_id)
    if actor.kind == STAFF:
        staff = await org.current_staff(int(actor.id))
        found = await InviteCode.filter(staff_id=staff.id).first()
        return found or await _create(actor, {"staff_id": staff.id}, owner_kind=STAFF, bank_id=staff.bank_id)
    raise NoInviteCodeForActor()


async def _create(actor: Actor, owner: dict, *, owner_kind: str, bank_id: int | None) -> InviteCode:
    for _ in range(5):
        try:
            async with in_transaction():
                invite = await InviteCode.create(code=codes.new_code(), owner_kind=owner_kind, bank_id=bank_id, **owner)
                await audit.record(
                    actor, "invite_code.create", "invite_code", invite.id, bank_id=bank_id, after={"code": invite.code, "owner_kind": owner_kind}
                )
            return invite
        except IntegrityError:
            # Either a concurrent first ask made the owner's code, or the random code was taken.
            existing = await InviteCode.filter(**owner).first()
            if existing is not None:
                return existing
    raise RuntimeError("no free invite code after 5 draws")  # 21^8 codes: not in this universe


async def resolve(code: str | None) -> InviteCode:
    normalised = codes.normalise(code)
    invite = await InviteCode.filter(code=normalised).first() if normalised else None
    if invite is None:
        raise UnknownInviteCode()
    return invite


async def invite_bank(code: str | None) -> int | None:
    """The bank a person arriving with ``code`` becomes a customer of (the inviter's), if any."""
    try:
        invite = await resolve(code)
    except UnknownInviteCode:
        return None
    if invite.bank_id is None or not await Bank.filter(id=invite.bank_id, is_active=True).exists():
        return None
    return invite.bank_id


async def mini_program_code(invite: InviteCode, maker: MiniProgramCodes, *, page: str, width: int) -> bytes:
    """The mini-program code of ``invite``: drawn by WeChat once, then served from our copy."""
    stored = await WxaCodeImage.filter(invite_code_id=invite.id, page=page, width=width).first()
    if stored is not None:
        return bytes(stored.png)
    png = await maker.wxa_code(invite.code, page, width)
    try:
        await WxaCodeImage.create(invite_code_id=invite.id, page=page, width=width, png=png)
    except IntegrityError:
        pass  # drawn twice at once: either copy will do
    return png


# ---- devices and scans ---------------------------------------------------------------------------


async def note_device(owner_kind: str, owner_id: int, device_id: str | None, *, at: datetime | None = None) -> None:
    """Remember that this customer or staff member uses this device (by hash)."""
    hashed = device_hash(device_id)
    if hashed is None:
        return
    at = at or clock.now()
    seen = await KnownDevice.filter(device_hash=hashed, owner_kind=owner_kind, owner_id=owner_id).update(last_seen_at=at)
    if not seen:
        try:
            async with in_transaction():
                await KnownDevice.create(device_hash=hashed, owner_kind=owner_kind, owner_id=owner_id, first_seen_at=at, last_seen_at=at)
        except IntegrityError:
            pass  # noted concurrently


@dataclass(frozen=True)
class Scanned:
    touch: InviteTouch
    invite: InviteCode
    bank: Bank | None


async def record_scan(
    redis,
    code: str,
    *,
    channel: str,
    device_id: str | None,
    ip: str | None,
    key_prefix: str,
    limits: ScanLimits = DEFAULT_SCAN_LIMITS,
    at: datetime | None = None,
) -> Scanned:
    """Record one scan or open of a code, within the device's and the address's velocity limits
    (counted before the code is looked up, so guessing codes is limited too)."""
    hashed_device = device_hash(device_id)
    # An address we cannot parse (a misconfigured proxy) still counts: all such share one bucket.
    address = address_hash(ip) or pii.lookup_hash(ADDRESS, f"unparsed:{ip or ''}")
    await _count_scan(redis, key_prefix, hashed_device, address, limits)
    invite = await resolve(code)
    touch = await InviteTouch.create(
        invite_code=invite, channel=channel, device_hash=hashed_device, network_hash=network_hash(ip), at=at or clock.now()
    )
    bank = await Bank.filter(id=invite.bank_id, is_active=True).first() if invite.bank_id else None
    return Scanned(touch, invite, bank)


async def _count_scan(redis, prefix: str, device: str | None, address: str, limits: ScanLimits) -> None:
    counters = [(f"{prefix}mkt:scan:device:{limit.window_seconds}:{device}", limit) for limit in limits.per_device if device]
    counters += [(f"{prefix}mkt:scan:address:{limit.window_seconds}:{address}", limit) for limit in limits.per_address]
    try:
        for key, limit in counters:
            await rate_limit.hit(redis, key, limit)
    except (RateLimited, DependencyUnavailable):
        raise
    except Exception as exc:  # Redis down: an uncounted scan could be abuse, so refuse it for now
        log.warning("scan counters unavailable: %s", type(exc).__name__)
        raise ScanCountingUnavailable() from None


# ---- binding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inviter:
    code: InviteCode
    customer: Customer | None
    staff: Staff | None
    staff_credit: str | None
    branch_id: int | None
    bank_id: int | None


@dataclass(frozen=True)
class Arrival:
    """What a login with an invite code came to: the referral, or why there is none."""

    referral: InviteReferral | None
    refused: str | None = None


async def on_login(customer_id: int, *, scene: str | None, device_id: str | None, ip: str | None, channel: str) -> Arrival | None:
    """A mini-program login: remember the device; with a ``scene`` invite code, bind the customer
    if the rules allow. A refusal is an outcome, not an error: the login stands either way."""
    await note_device(CUSTOMER, customer_id, device_id)
    if not scene:
        return None
    try:
        return Arrival(await bind(customer_id, scene, device_id=device_id, ip=ip, channel=channel))
    except UnknownInviteCode:
        return Arrival(None, "unknown_code")
    except ReferralRefused as refused:
        return Arrival(None, refused.reason)


async def bind(
    customer_id: int,
    code: str,
    *,
    device_id: str | None,
    ip: str | None,
    channel: str,
    rules: BindingRules = DEFAULT_RULES,
    campaign_id: int | None = None,
    at: datetime | None = None,
) -> InviteReferral:
    """Bind the customer to the inviter of their first touch within the window (this code's touch
    included), or raise why not. A customer already bound stays bound to their inviter."""
    at = at or clock.now()
    invite = await resolve(code)
    referee = await customers.current(Actor(kind=CUSTOMER, id=customer_id))
    existing = await InviteReferral.filter(referee_id=referee.id).first()
    if existing is not None:
        return existing
    hashed_device, hashed_network = device_hash(device_id), network_hash(ip)
    # The touch is a fact whatever the rules say: recorded in a commit of its own.
    await InviteTouch.create(
        invite_code=invite, channel=LOGIN, device_hash=hashed_device, network_hash=hashed_network, customer_id=referee.id, at=at
    )
    first = await _first_touch(referee.id, hashed_device, since=at - rules.touch_window)
    inviter = await _inviter(invite if first.invite_code_id == invite.id else await InviteCode.get(id=first.invite_code_id))
    await _check(referee, inviter, first_touch_at=first.at, device=hashed_device, rules=rules)
    try:
        async with in_transaction():
            referral = await InviteReferral.create(
                referee_id=referee.id,
                invite_code_id=inviter.code.id,
                inviter_customer_id=inviter.customer.id if inviter.customer else None,
                inviter_staff_id=inviter.staff.id if inviter.staff else None,
                staff_credit=inviter.staff_credit,
                branch_id=inviter.branch_id,
                bank_id=inviter.bank_id,
                campaign_id=campaign_id,
                first_touch_id=first.id,
                first_touch_at=first.at,
                channel=channel,
                device_hash=hashed_device,
                network_hash=hashed_network,
                stage=REGISTERED,
                bound_at=at,
            )
            await audit.record(
                Actor(kind=CUSTOMER, id=referee.id, channel=channel),
                "referral.bind",
                "invite_referral",
                referral.id,
                bank_id=referral.bank_id,
                after={"code": inviter.code.code, "inviter_customer_id": referral.inviter_customer_id, "inviter_staff_id": referral.inviter_staff_id},
            )
            await announce(referral)
    except IntegrityError:
        return await InviteReferral.get(referee_id=referee.id)  # bound concurrently: the first binding stands
    return referral


async def announce(referral: InviteReferral) -> None:
    """Tell whoever listens (rewards, analytics) that the referral reached its stage, after commit."""
    await outbox.enqueue(
        REFERRAL_TOPIC,
        {
            "referral_id": referral.id,
            "stage": referral.stage,
            "referee_id": referral.referee_id,
            "inviter_customer_id": referral.inviter_customer_id,
            "inviter_staff_id": referral.inviter_staff_id,
            "branch_id": referral.branch_id,
            "bank_id": referral.bank_id,
            "campaign_id": referral.campaign_id,
        },
        bank_id=referral.bank_id,
    )


async def _first_touch(customer_id: int, device: str | None, *, since: datetime) -> InviteTouch:
    mine = Q(customer_id=customer_id) | Q(device_hash=device) if device else Q(customer_id=customer_id)
    return await InviteTouch.filter(mine, at__gte=since).order_by("at", "id").first()


async def _live_customer(customer_id: int) -> Customer | None:
    try:
        return await customers.current(Actor(kind=CUSTOMER, id=customer_id))
    except NotFound:
        return None


async def _inviter(invite: InviteCode) -> Inviter:
    """Who gets the credit for ``invite``: its owner, and for a customer brought in by a staff
    member of the same bank, that staff member too."""
    if invite.owner_kind == STAFF:
        staff = await Staff.filter(id=invite.staff_id, is_active=True).first()
        if staff is None:
            raise UnknownInviteCode()
        return Inviter(invite, None, staff, "direct", staff.branch_id, staff.bank_id)
    customer = await _live_customer(invite.customer_id)
    if customer is None:
        raise UnknownInviteCode()
    upstream = await InviteReferral.filter(referee_id=customer.id, voided_at=None, inviter_staff_id__not_isnull=True).first()
    staff = await Staff.filter(id=upstream.inviter_staff_id, is_active=True).first() if upstream else None
    if staff is not None and staff.bank_id == invite.bank_id:
        return Inviter(invite, customer, staff, "customer", staff.branch_id, invite.bank_id)
    return Inviter(invite, customer, None, None, None, invite.bank_id)


async def _check(referee: Customer, inviter: Inviter, *, first_touch_at: datetime, device: str | None, rules: BindingRules) -> None:
    if inviter.customer is not None and inviter.customer.id == referee.id:
        raise SelfReferral("person")
    if rules.same_phone_is_self and shares_phone(referee, inviter):
        raise SelfReferral("phone")
    if rules.same_device_is_self and device and await _uses_device(inviter, device):
        raise SelfReferral("device")
    if rules.new_customers_only and not await _is_new(referee, first_touch_at - rules.arrival_grace):
        raise NotANewCustomer()
    if rules.new_customers_only and rules.same_device_is_self and device and await _used_by_another_customer(referee, device):
        raise NotANewCustomer()
    if inviter.customer is not None and await _leads_back(inviter.customer.id, referee.id, rules.max_chain):
        raise ReferralLoop()


def shares_phone(referee: Customer, inviter: Inviter) -> bool:
    if not referee.phone_hash:
        return False
    phones = set()
    if inviter.customer is not None and inviter.customer.phone_hash:
        phones.add(inviter.customer.phone_hash)
    if inviter.staff is not None and inviter.staff.phone:
        phones.add(pii.lookup_hash(customers.PHONE, inviter.staff.phone))
    return referee.phone_hash in phones


async def _uses_device(inviter: Inviter, device: str) -> bool:
    owners = Q()
    if inviter.customer is not None:
        owners |= Q(owner_kind=CUSTOMER, owner_id=inviter.customer.id)
    if inviter.staff is not None:
        owners |= Q(owner_kind=STAFF, owner_id=inviter.staff.id)
    return await KnownDevice.filter(owners, device_hash=device).exists()


async def _used_by_another_customer(referee: Customer, device: str) -> bool:
    return await KnownDevice.filter(device_hash=device, owner_kind=CUSTOMER).exclude(owner_id=referee.id).exists()


async def _is_new(referee: Customer, arrived_after: datetime) -> bool:
    if referee.created_at < arrived_after:
        return False
    if await Application.filter(customer_id=referee.id).exists():
        return False
    return not await BankRelationship.filter(customer_id=referee.id, is_bank_customer=True).exists()


async def _leads_back(inviter_id: int, referee_id: int, max_chain: int) -> bool:
    """Whether following inviters up from ``inviter_id`` reaches ``referee_id`` (A→B→…→A)."""
    current, seen = inviter_id, set()
    for _ in range(max_chain):
        if current == referee_id:
            return True
        if current in seen:
            return False
        seen.add(current)
        upstream = await InviteReferral.filter(referee_id=current).values_list("inviter_customer_id", flat=True)
        if not upstream or upstream[0] is None:
            return False
        current = upstream[0]
    return False


async def inviter_of(referral: InviteReferral) -> Inviter:
    """The inviter as recorded on ``referral`` (for re-checking the rules as the referee's funnel advances)."""
    customer = await _live_customer(referral.inviter_customer_id) if referral.inviter_customer_id else None
    staff = await Staff.filter(id=referral.inviter_staff_id).first() if referral.inviter_staff_id else None
    code = await InviteCode.get(id=referral.invite_code_id)
    return Inviter(code, customer, staff, referral.staff_credit, referral.branch_id, referral.bank_id)


# ---- reading -------------------------------------------------------------------------------------


async def referring_staff_id(customer_id: int) -> int | None:
    """The staff member credited with bringing this customer (directly or through one of their
    customers), if any: the lending core keeps them off the review of the customer's application.
    Hand-written: every application asks, and the ORM's query cost it a quarter of a millisecond."""
    row = await sql.fetch_one(
        "SELECT inviter_staff_id FROM invite_referral WHERE referee_id = :customer AND voided_at IS NULL", customer=customer_id
    )
    return row["inviter_staff_id"] if row else None


def my_referees(actor: Actor):
    """The people the signed-in customer invited (voided referrals count for no one)."""
    if actor.kind != CUSTOMER:
        raise NoInviteCodeForActor()
    return InviteReferral.filter(inviter_customer_id=int(actor.id), voided_at=None).select_related("referee")


async def owner_name(invite: InviteCode) -> str | None:
    """The owner's name in clear, for masking by the caller (the poster shows it masked)."""
    if invite.owner_kind == STAFF:
        staff = await Staff.filter(id=invite.staff_id).first()
        return staff.name if staff else None
    customer = await _live_customer(invite.customer_id)
    return customer.name if customer else None


async def poster_text(invite: InviteCode, product_code: str | None, *, wechat_code: bool) -> PosterText:
    """What the share poster of ``invite`` says: the product (else "online loans"), the bank, the
    inviter's masked name and the code."""
    product, product_en = "线上贷款", "Online loans"
    if product_code:
        definition = await _product_definition(product_code, invite.bank_id)
        product, product_en = definition.name, definition.name_en
    bank = await Bank.filter(id=invite.bank_id).first() if invite.bank_id else None
    name = await owner_name(invite)
    return PosterText(
        product=product,
        product_en=product_en,
        bank=bank.name if bank else None,
        inviter=pii.mask_name(name) if name else None,
        by_staff=invite.owner_kind == STAFF,
        code=invite.code,
        wechat_code=wechat_code,
    )


async def _product_definition(code: str, bank_id: int | None):
    if bank_id is not None:
        return (await products.offer(code, bank_id, None)).definition
    product = await Product.filter(code=code.upper(), published_version__not_isnull=True).first()
    if product is None:
        raise ProductNotFound()
    return await products.version_definition(product.id, product.published_version, code=product.code)
