"""Products: the catalogue, versions and publication (maker-checker), what a bank offers through
which channel, its parameters, and the LPR."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tortoise.transactions import in_transaction

from infra import audit, clock
from infra.actors import Actor
from lending_core import access
from lending_core.approvals import service as approvals
from lending_core.approvals.models import ChangeRequest
from lending_core.decisions.engine import Params
from lending_core.products.definition import InvalidDefinition, ProductDefinition, parse
from lending_core.products.definition_text import UnreadableText, from_text
from lending_core.products.errors import DefinitionRefused, ParameterOutOfBounds, ProductNotFound, ProductNotOffered, VersionConflict
from lending_core.products.models import BankProductSetting, LprRate, Product, ProductVersion
from lending_core.org.models import Bank

CATALOGUE = Path(__file__).parent / "catalogue"
ASSOCIATION = "association"
# LPR as published by the National Interbank Funding Center (basis points), from 20 May 2025.
SHIPPED_LPR = [("1y", 300, date(2025, 5, 20)), ("5y", 350, date(2025, 5, 20))]


@dataclass(frozen=True)
class Offer:
    product: Product
    version: int
    definition: ProductDefinition
    params: Params | None  # None: the bank does not offer it


# Parsed definitions by (code, version): a published version never changes, so this is safe
# to keep for the life of the process (parsing compiles every expression).
_parsed: dict[tuple[str, int], ProductDefinition] = {}
# What a bank offers changes rarely and is read on every quote: kept for a few seconds per
# process. Publishing clears it here at once; other workers see a new version within OFFER_TTL.
OFFER_TTL_SECONDS = 5.0
LPR_TTL_SECONDS = 60.0
_offers: dict[tuple[str, int], tuple[float, "Offer | None"]] = {}
_lpr: dict[str, tuple[float, list[tuple[date, int]]]] = {}


def forget_cached() -> None:
    """Drop what this process keeps of offers, the LPR and parsed versions (after publishing, or
    when the database is replaced, as between tests)."""
    _offers.clear()
    _lpr.clear()
    _parsed.clear()


def definition_of(code: str, version: int, raw: dict) -> ProductDefinition:
    key = (code, version)
    if key not in _parsed:
        _parsed[key] = parse(raw, source=f"{code} v{version}")
    return _parsed[key]


def read_catalogue_file(path: Path) -> ProductDefinition:
    with path.open("rb") as handle:
        return parse(tomllib.load(handle), source=path.name)


async def import_catalogue(actor: Actor, *, directory: Path = CATALOGUE) -> int:
    """Load each shipped definition as version 1 of its product, if the product is new."""
    created = 0
    for path in sorted(directory.glob("*.toml")):
        definition = read_catalogue_file(path)
        if await Product.filter(code=definition.code).exists():
            continue
        owner = None if definition.owner == ASSOCIATION else await Bank.get(code=definition.owner)
        async with in_transaction():
            product = await Product.create(code=definition.code, owner_bank=owner, family=definition.family, published_version=1)
            await ProductVersion.create(
                product=product, version=1, definition=dict(definition.raw), status="published", created_by=actor.label, published_at=clock.now()
            )
            await audit.record(actor, "product.import", "product", product.id, bank_id=owner.id if owner else None, after={"code": definition.code})
        created += 1
    return created


async def seed_lpr() -> None:
    for term, bps, effective in SHIPPED_LPR:
        await LprRate.get_or_create(term=term, effective_from=effective, defaults={"bps": bps})


async def lpr_bps(term: str, on: date) -> int:
    cached = _lpr.get(term)
    if cached is None or cached[0] < time.monotonic():
        rates = await LprRate.filter(term=term).order_by("-effective_from").values_list("effective_from", "bps")
        cached = _lpr[term] = (time.monotonic() + LPR_TTL_SECONDS, list(rates))
    for effective_from, bps in cached[1]:
        if effective_from <= on:
            return bps
    raise LookupError(f"no LPR for {term} on {on}")


async def _published(product: Product) -> tuple[int, ProductDefinition]:
    return product.published_version, await version_definition(product.id, product.published_version, code=product.code)


async def version_definition(product_id: int, version: int, *, code: str | None = None) -> ProductDefinition:
    """One version's definition; parsed once per process (versions never change)."""
    if code is not None and (code, version) in _parsed:
        return _parsed[(code, version)]
    row = await ProductVersion.filter(product_id=product_id, version=version).select_related("product").get()
    return definition_of(row.product.code, version, row.definition)


async def _params(bank_id: int, product: Product, definition: ProductDefinition) -> Params | None:
    """The product's parameters at this bank, or None if the bank does not offer it."""
    setting = await BankProductSetting.filter(bank_id=bank_id, product_id=product.id).first()
    if setting is not None and not setting.offered:
        return None
    overrides = setting.params if setting else {}
    return Params(
        amount_max_yuan=min(overrides.get("amount_max", definition.amount_yuan.max), definition.amount_yuan.max),
        rate_floor_bps=overrides.get("rate_floor_bps", definition.pricing.floor_bps),
        spread_adjust_bps=overrides.get("spread_adjust_bps", 0),
        restrict_list_cap_yuan=overrides.get("restrict_list_cap", definition.restrict_list_cap_yuan),
    )


async def offers(bank_id: int, channel: str | None) -> list[Offer]:
    """What this bank offers through this channel: province-wide products and its own."""
    found = []
    for product in await Product.filter(published_version__not_isnull=True).order_by("code"):
        if product.owner_bank_id not in (None, bank_id):
            continue
        version, definition = await _published(product)
        if channel is not None and channel not in definition.channels:
            continue
        params = await _params(bank_id, product, definition)
        if params is not None:
            found.append(Offer(product, version, definition, params))
    return found


async def offer(code: str, bank_id: int, channel: str | None) -> Offer:
    key = (code.upper(), bank_id)
    cached = _offers.get(key)
    if cached is None or cached[0] < time.monotonic():
        cached = _offers[key] = (time.monotonic() + OFFER_TTL_SECONDS, await _load_offer(code, bank_id))
    found = cached[1]
    if found is None:
        raise ProductNotFound()
    if found.product.owner_bank_id not in (None, bank_id):
        raise ProductNotOffered("this product is one bank's own and not offered at yours")
    if found.params is None:
        raise ProductNotOffered("your bank does not offer this product")
    if channel is not None and channel not in found.definition.channels:
        raise ProductNotOffered(f"this product is not offered through {channel}", details={"channels": list(found.definition.channels)})
    return found


def _stored_code(code: str) -> str:
    """``code`` as products are stored. A code longer than the column names no product (the
    database layer would refuse the query itself: a 500 for what is a 404)."""
    if len(code) > Product._meta.fields_map["code"].max_length:
        raise ProductNotFound()
    return code.upper()


async def _load_offer(code: str, bank_id: int) -> Offer | None:
    product = await Product.filter(code=_stored_code(code)).first()
    if product is None or product.published_version is None:
        return None
    version, definition = await _published(product)
    return Offer(product, version, definition, await _params(bank_id, product, definition))


def validate(raw: dict, *, source: str = "proposal") -> ProductDefinition:
    try:
        return parse(raw, source=source)
    except InvalidDefinition as exc:
        raise DefinitionRefused(str(exc), details={"problems": exc.problems}) from None


def read_definition_text(text: str) -> dict:
    """A definition written in its file format (TOML), as a mapping to validate or propose."""
    try:
        return from_text(text)
    except UnreadableText as exc:
        raise DefinitionRefused(exc.problem, details={"problems": [exc.problem]}) from None


async def _settle_decided_proposals(product_id: int) -> None:
    """A proposal whose change request was rejected or withdrawn is no longer waiting: mark it
    rejected, so that it does not block the next proposal."""
    proposed = await ProductVersion.filter(product_id=product_id, status="proposed").values_list("id", flat=True)
    if not proposed:
        return
    waiting = set(
        await ChangeRequest.filter(
            kind="product.publish", target_type="product_version", target_id__in=[str(i) for i in proposed], status="pending"
        ).values_list("target_id", flat=True)
    )
    settled = [i for i in proposed if str(i) not in waiting]
    if settled:
        await ProductVersion.filter(id__in=settled).update(status="rejected")


async def propose_version(actor: Actor, raw: dict, note: str) -> tuple[ProductVersion, ChangeRequest]:
    """A new version of a product (or a new product), published when a second person approves."""
    access.require(actor, "products.manage")
    definition = validate(raw)
    owner = None if definition.owner == ASSOCIATION else await Bank.filter(code=definition.owner).first()
    if definition.owner != ASSOCIATION and owner is None:
        raise DefinitionRefused("owner names no member bank", details={"problems": ["owner: unknown bank code"]})
    access.check_bank_visible(actor, owner.id if owner else None)
    async with in_transaction():
        product = await Product.filter(code=definition.code).first()
        if product is None:
            product = await Product.create(code=definition.code, owner_bank=owner, family=definition.family)
        await _settle_decided_proposals(product.id)
        if await ProductVersion.filter(product_id=product.id, status="proposed").exists():
            raise VersionConflict()
        latest = await ProductVersion.filter(product_id=product.id).order_by("-version").first()
        version = await ProductVersion.create(
            product=product, version=(latest.version + 1) if latest else 1, definition=raw, note=note, created_by=actor.label
        )
        change = await approvals.propose(
            actor,
            "product.publish",
            bank_id=owner.id if owner else None,
            target_type="product_version",
            target_id=version.id,
            payload={"code": definition.code, "version": version.version},
            reason=note,
        )
    return version, change


async def _publish(change: ChangeRequest, checker: Actor) -> None:
    version = await ProductVersion.filter(id=int(change.target_id)).select_related("product").get()
    product = version.product
    await ProductVersion.filter(product_id=product.id, status="published").update(status="retired")
    version.status, version.published_at = "published", clock.now()
    await version.save(update_fields=["status", "published_at"])
    await Product.filter(id=product.id).update(published_version=version.version)
    forget_cached()
    await audit.record(
        checker, "product.publish", "product", product.id, bank_id=product.owner_bank_id, after={"code": product.code, "version": version.version}
    )


approvals.register(
    approvals.ChangeKind(name="product.publish", propose_permission="products.manage", approve_permission="products.manage", apply=_publish)
)


async def versions(actor: Actor, code: str) -> tuple[Product, list[ProductVersion]]:
    access.require(actor, "org.read")
    product = await Product.filter(code=_stored_code(code)).first()
    if product is None or (product.owner_bank_id is not None and not actor.is_association and product.owner_bank_id != actor.bank_id):
        raise ProductNotFound()
    return product, await ProductVersion.filter(product_id=product.id).order_by("version")


async def set_bank_parameters(actor: Actor, code: str, *, offered: bool, params: dict[str, int]) -> BankProductSetting:
    """A member bank's own parameters for a province-wide product (within the bounds its
    definition sets), or whether it offers the product at all. Takes effect within OFFER_TTL."""
    access.require(actor, "products.manage")
    if actor.bank_id is None:
        raise ParameterOutOfBounds("parameters are set by a member bank for itself")
    product = await Product.filter(code=_stored_code(code), owner_bank_id=None).first()
    if product is None or product.published_version is None:
        raise ProductNotFound()
    definition = await version_definition(product.id, product.published_version, code=product.code)
    problems = []
    for name, value in params.items():
        bounds = definition.overridable.get(name)
        if bounds is None:
            problems.append({"parameter": name, "problem": "not_overridable"})
        elif not bounds.min <= value <= bounds.max:
            problems.append({"parameter": name, "min": bounds.min, "max": bounds.max})
    if problems:
        raise ParameterOutOfBounds(details={"problems": problems, "overridable": sorted(definition.overridable)})
    async with in_transaction():
        setting, _ = await BankProductSetting.get_or_create(bank_id=actor.bank_id, product_id=product.id)
        before = {"offered": setting.offered, "params": dict(setting.params)}
        setting.offered, setting.params = offered, dict(params)
        await setting.save()
        await audit.record(
            actor, "product.bank_parameters", "product", product.id, bank_id=actor.bank_id, before=before, after={"offered": offered, "params": params}
        )
    forget_cached()
    return setting


@dataclass(frozen=True)
class Listing:
    """A product as product staff see it in the catalogue: what is published and what waits."""

    product: Product
    published: ProductVersion | None
    proposed: ProductVersion | None
    change_request: ChangeRequest | None  # the pending change that would publish ``proposed``

    @property
    def shown(self) -> ProductVersion:
        """The version whose name and channels describe the product (a new product has only a proposal)."""
        return self.published or self.proposed


def managed_products(actor: Actor):
    """The products this member may manage: association staff all of them, a bank's staff their
    bank's own products (province-wide ones they tune through bank parameters only)."""
    access.require(actor, "products.manage")
    query = Product.all().select_related("owner_bank")
    return query if actor.is_association else query.filter(owner_bank_id=actor.bank_id)


async def managed_product(actor: Actor, code: str) -> Product:
    product = await managed_products(actor).filter(code=_stored_code(code)).first()
    if product is None:
        raise ProductNotFound()
    return product


async def catalogue(actor: Actor) -> list[Listing]:
    products = await managed_products(actor).order_by("code")
    rows = await ProductVersion.filter(product_id__in=[p.id for p in products], status__in=("published", "proposed"))
    published = {v.product_id: v for v in rows if v.status == "published"}
    proposed = {v.product_id: v for v in rows if v.status == "proposed"}
    changes = {
        change.target_id: change
        for change in await ChangeRequest.filter(
            kind="product.publish", status="pending", target_type="product_version", target_id__in=[str(v.id) for v in proposed.values()]
        )
    }
    listings = []
    for product in products:
        waiting = proposed.get(product.id)
        change = changes.get(str(waiting.id)) if waiting else None
        if change is None:
            waiting = None  # its change was rejected or withdrawn: nothing waits
        if published.get(product.id) or waiting:
            listings.append(Listing(product, published.get(product.id), waiting, change))
    return listings


async def version_for_staff(actor: Actor, code: str, version: int) -> tuple[Product, ProductVersion]:
    """One version of a product this member manages, with its definition."""
    product = await managed_product(actor, code)
    found = await ProductVersion.filter(product_id=product.id, version=version).first()
    if found is None:
        raise ProductNotFound("no such version of this product")
    return product, found
