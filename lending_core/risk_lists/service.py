"""Black and grey lists: adding entries (one by one or from CSV), lifting them with a second
person, and screening a person for the decision engine.

Visibility: a bank's staff see their own bank's entries and the association's all-bank entries
(those apply to their decisions too, and a reviewer must be able to see why an applicant was
stopped); they add and lift only their own bank's. Association staff see and manage all.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from infra import audit, clock, pii, sql
from infra.actors import Actor
from infra.errors import NotFound
from infra.identity_numbers import InvalidIdNumber, InvalidPhone, validate_id_number, validate_phone
from infra.transitions import TransitionTable
from lending_core import access
from lending_core.approvals import service as approvals
from lending_core.approvals.models import ChangeRequest
from lending_core.customers.models import Customer, CustomerIdentity
from lending_core.customers.service import ID_NUMBER, PHONE, UNIONID_ISSUER, WECHAT_UNIONID
from lending_core.org.service import get_bank
from lending_core.risk_lists.errors import (
    AllBankEntryForbidden,
    DuplicateListEntry,
    ExpiryInPast,
    InvalidImportFile,
    InvalidReason,
    InvalidUnionid,
    LiftAlreadyProposed,
    MatchKeyRequired,
    UnknownListLevel,
)
from lending_core.risk_lists.models import ListEntry

PROHIBIT, RESTRICT, GREYLIST = "blacklist_prohibit", "blacklist_restrict", "greylist"
# Strongest first: when several entries match, the first level here wins.
LEVELS = (PROHIBIT, RESTRICT, GREYLIST)
LEVEL_NAMES = {PROHIBIT: ("黑名单禁止级", "禁止级"), RESTRICT: ("黑名单限制级", "限制级"), GREYLIST: ("灰名单",)}

ACTIVE, LIFTED, EXPIRED = "active", "lifted", "expired"
STATUS = TransitionTable("list entry", {("lift", ACTIVE): LIFTED, ("expire", ACTIVE): EXPIRED})

READ, MANAGE = "lists.read", "lists.manage"
KEY_COLUMNS = ("id_number_hash", "phone_hash", "unionid_hash")
LIFT = "risk_list.lift"
MAX_REASON = 500
MAX_IMPORT_ROWS = 5000
MAX_IMPORT_BYTES = 1_000_000
IMPORT_COLUMNS = ("level", "id_number", "phone", "reason", "expires_on")
_UNIONID = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass(frozen=True)
class Screening:
    """What the lists say about one person at one bank: the strongest matching level (None when
    nothing matches) and every matching entry, strongest first. ``blacklist_restrict`` means no
    automatic approval: manual review, the limit capped by the product's parameter."""

    level: str | None
    entry_ids: tuple[int, ...] = ()

    @property
    def prohibits(self) -> bool:
        return self.level == PROHIBIT

    @property
    def restricts(self) -> bool:
        return self.level == RESTRICT

    @property
    def flagged(self) -> bool:
        return self.level == GREYLIST

    @property
    def clear(self) -> bool:
        return self.level is None


@dataclass(frozen=True)
class ImportReport:
    imported: int
    # (row, code): rows counted as a spreadsheet shows them, the header being row 1.
    errors: list[tuple[int, str]]


@dataclass(frozen=True)
class _Draft:
    level: str
    id_number_hash: str | None
    phone_hash: str | None
    unionid_hash: str | None
    id_number_masked: str | None
    phone_masked: str | None
    reason: str
    expires_at: datetime | None

    @property
    def keys(self) -> tuple:
        return (self.level, self.id_number_hash, self.phone_hash, self.unionid_hash)


# ---- adding -------------------------------------------------------------------------------------


async def add(
    actor: Actor,
    *,
    level: str,
    id_number: str | None = None,
    phone: str | None = None,
    unionid: str | None = None,
    reason: str,
    bank_id: int | None,
    expires_at: datetime | None = None,
) -> ListEntry:
    """Put a person on a list. Staff need ``lists.manage`` and act within their bank (only
    association staff may add an all-bank entry, ``bank_id=None``); a system job (an actor of kind
    "system") adds entries it identified itself, with source "system"."""
    await _check_scope(actor, bank_id)
    draft = _draft(level=level, id_number=id_number, phone=phone, unionid=unionid, reason=reason, expires_at=expires_at, now=clock.now())
    async with in_transaction():
        if draft.keys in await _active_keys(bank_id, [draft]):
            raise DuplicateListEntry()
        return await _create(actor, draft, bank_id)


async def _check_scope(actor: Actor, bank_id: int | None) -> None:
    if actor.kind == "system":
        if bank_id is not None:
            await get_bank(bank_id)
        return
    access.require(actor, MANAGE)
    if bank_id is None and not actor.is_association:
        raise AllBankEntryForbidden()
    access.check_bank_visible(actor, bank_id)
    if bank_id is not None:
        await get_bank(bank_id)


def _draft(*, level, id_number, phone, unionid, reason, expires_at, now: datetime) -> _Draft:
    """The entry's stored form: validated, hashed and masked. Raises on the first problem."""
    if level not in LEVELS:
        raise UnknownListLevel(details={"levels": list(LEVELS)})
    id_number = validate_id_number(id_number) if _given(id_number) else None
    phone = validate_phone(phone) if _given(phone) else None
    unionid = unionid.strip() if _given(unionid) else None
    if unionid is not None and not _UNIONID.fullmatch(unionid):
        raise InvalidUnionid()
    if id_number is None and phone is None and unionid is None:
        raise MatchKeyRequired()
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidReason()
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        raise ExpiryInPast()
    return _Draft(
        level=level,
        id_number_hash=pii.lookup_hash(ID_NUMBER, id_number) if id_number else None,
        phone_hash=pii.lookup_hash(PHONE, phone) if phone else None,
        unionid_hash=pii.lookup_hash(WECHAT_UNIONID, unionid) if unionid else None,
        id_number_masked=pii.mask_id_number(id_number) if id_number else None,
        phone_masked=pii.mask_phone(phone) if phone else None,
        reason=pii.scrub_text(reason),
        expires_at=expires_at,
    )


def _given(value: str | None) -> bool:
    return value is not None and bool(value.strip())


async def _active_keys(bank_id: int | None, drafts: list[_Draft]) -> set[tuple]:
    """The (level, hashes) of active entries of this bank that share a key with any draft."""
    wanted = _any_key({column: sorted({getattr(d, column) for d in drafts} - {None}) for column in KEY_COLUMNS})
    query = ListEntry.filter(status=ACTIVE).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now())).filter(wanted)
    query = query.filter(bank_id__isnull=True) if bank_id is None else query.filter(bank_id=bank_id)
    rows = await query.values_list("level", "id_number_hash", "phone_hash", "unionid_hash")
    return {tuple(row) for row in rows}


async def _create(actor: Actor, draft: _Draft, bank_id: int | None) -> ListEntry:
    entry = await ListEntry.create(
        bank_id=bank_id,
        level=draft.level,
        id_number_hash=draft.id_number_hash,
        phone_hash=draft.phone_hash,
        unionid_hash=draft.unionid_hash,
        id_number_masked=draft.id_number_masked,
        phone_masked=draft.phone_masked,
        source="system" if actor.kind == "system" else "staff",
        reason=draft.reason,
        expires_at=draft.expires_at,
        created_by=actor.label,
    )
    await audit.record(actor, "risk_list.add", "list_entry", entry.id, bank_id=bank_id, after=snapshot(entry))
    return entry


# ---- importing ----------------------------------------------------------------------------------


async def import_csv(actor: Actor, csv_text: str, *, bank_id: int | None) -> ImportReport:
    """Add the rows of a CSV file (header row: level, id_number, phone, reason and optionally
    expires_on as YYYY-MM-DD, the last day the entry applies, Beijing time).

    Each row is checked on its own. The valid rows are added together in one transaction — all of
    them or, if the database refuses, none — and the invalid ones are reported by row number and
    reason code, never with their content (it is personal data). A file with some bad rows still
    imports its good ones: a list of thousands should not wait on one typo, and the report names
    every row to fix and resubmit. Duplicates (of an active entry, or of an earlier row) are
    reported as ``duplicate``, so resubmitting a corrected file adds only what is new."""
    await _check_scope(actor, bank_id)
    rows = _parse(csv_text)
    now = clock.now()
    drafts: list[tuple[int, _Draft]] = []
    errors: list[tuple[int, str]] = []
    for number, row in rows:
        try:
            drafts.append((number, _row_draft(row, now)))
        except _RowRefused as refused:
            errors.append((number, refused.code))
    accepted: list[_Draft] = []
    async with in_transaction():
        seen = await _active_keys(bank_id, [draft for _, draft in drafts]) if drafts else set()
        for number, draft in drafts:
            if draft.keys in seen:
                errors.append((number, "duplicate"))
                continue
            seen.add(draft.keys)
            accepted.append(draft)
        entries = [await _create(actor, draft, bank_id) for draft in accepted]
        await audit.record(
            actor,
            "risk_list.import",
            "list_import",
            f"bank:{bank_id}" if bank_id is not None else "all_banks",
            bank_id=bank_id,
            after={"imported": len(entries), "refused": len(errors), "entry_ids": [e.id for e in entries]},
        )
    return ImportReport(imported=len(entries), errors=sorted(errors))


class _RowRefused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


_ROW_CODES: dict[type[Exception], str] = {
    UnknownListLevel: "unknown_level",
    InvalidIdNumber: "invalid_id_number",
    InvalidPhone: "invalid_phone",
    InvalidUnionid: "invalid_unionid",
    MatchKeyRequired: "missing_key",
    InvalidReason: "invalid_reason",
    ExpiryInPast: "expires_on_in_past",
}


def _parse(csv_text: str) -> list[tuple[int, dict[str, str]]]:
    if not isinstance(csv_text, str) or not csv_text.strip():
        raise InvalidImportFile(details={"problem": "empty"})
    if len(csv_text.encode("utf-8")) > MAX_IMPORT_BYTES:
        raise InvalidImportFile(details={"problem": "too_large", "max_bytes": MAX_IMPORT_BYTES})
    # Spreadsheet exports start with a byte-order mark.
    reader = csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"), newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
        records = list(reader)
    except csv.Error:
        raise InvalidImportFile(details={"problem": "not_csv"}) from None
    missing = [c for c in IMPORT_COLUMNS if c not in header and c != "expires_on"]
    unknown = [c for c in header if c not in IMPORT_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        # Column names are ours, never personal data, so they can be named back.
        raise InvalidImportFile(details={"problem": "columns", "missing": missing, "unknown": unknown[:10], "expected": list(IMPORT_COLUMNS)})
    numbered = [(number, cells) for number, cells in enumerate(records, start=2) if any(cell.strip() for cell in cells)]
    if len(numbered) > MAX_IMPORT_ROWS:
        raise InvalidImportFile(details={"problem": "too_many_rows", "max_rows": MAX_IMPORT_ROWS})
    if not numbered:
        raise InvalidImportFile(details={"problem": "no_rows"})
    return [(number, dict(zip(header, cells)) if len(cells) == len(header) else {}) for number, cells in numbered]


def _row_draft(row: dict[str, str], now: datetime) -> _Draft:
    if not row:
        raise _RowRefused("wrong_column_count")
    try:
        return _draft(
            level=_level(row["level"]),
            id_number=row["id_number"],
            phone=row["phone"],
            unionid=None,
            reason=row["reason"],
            expires_at=_end_of_business_day(row.get("expires_on", "")),
            now=now,
        )
    except tuple(_ROW_CODES) as exc:
        raise _RowRefused(_ROW_CODES[type(exc)]) from None


def _level(text: str) -> str:
    text = text.strip()
    for level, names in LEVEL_NAMES.items():
        if text.lower() == level or text in names:
            return level
    return text


def _end_of_business_day(text: str) -> datetime | None:
    """The moment an entry "expiring on" a date stops applying: midnight after it, Beijing time."""
    text = text.strip()
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        raise _RowRefused("invalid_expires_on") from None
    return clock.business_day_start(day + timedelta(days=1))


# ---- lifting ------------------------------------------------------------------------------------


async def propose_lift(actor: Actor, entry_id: int, reason: str) -> ChangeRequest:
    """Ask for an entry to be lifted; it is lifted when a second person approves the change."""
    access.require(actor, MANAGE)
    found = await entry(actor, entry_id)
    if found.bank_id is None and not actor.is_association:
        raise AllBankEntryForbidden()
    STATUS.next(effective_status(found, clock.now()), "lift")  # refuse before proposing
    if await ChangeRequest.filter(kind=LIFT, target_id=str(found.id), status="pending").exists():
        raise LiftAlreadyProposed()
    return await approvals.propose(
        actor,
        LIFT,
        bank_id=found.bank_id,
        target_type="list_entry",
        target_id=found.id,
        payload={"level": found.level, "id_number_masked": found.id_number_masked, "phone_masked": found.phone_masked},
        reason=reason,
    )


async def _apply_lift(change: ChangeRequest, checker: Actor) -> None:
    found = await ListEntry.filter(id=int(change.target_id)).select_for_update().first()
    if found is None:
        raise NotFound("the list entry no longer exists")
    before = snapshot(found)
    now = clock.now()
    found.status = STATUS.next(effective_status(found, now), "lift")
    found.lifted_by, found.lifted_at = checker.label, now
    await found.save(update_fields=["status", "lifted_by", "lifted_at"])
    await audit.record(
        checker,
        "risk_list.lift",
        "list_entry",
        found.id,
        bank_id=found.bank_id,
        before=before,
        after={**snapshot(found), "change_request": change.id, "proposed_by": f"staff:{change.proposed_by_id}"},
    )


approvals.register(approvals.ChangeKind(name=LIFT, propose_permission=MANAGE, approve_permission=MANAGE, apply=_apply_lift))


async def expire_due(at: datetime) -> int:
    """Mark active entries whose time has passed as expired (a scheduled job; screening already
    ignores them, this keeps the stored status honest). Returns how many were marked."""
    job = Actor(kind="system", id="risk_lists.expire")
    marked = 0
    async with in_transaction():
        for found in await ListEntry.filter(status=ACTIVE, expires_at__lte=at).select_for_update():
            before = snapshot(found)
            found.status = STATUS.next(found.status, "expire")
            await found.save(update_fields=["status"])
            await audit.record(job, "risk_list.expire", "list_entry", found.id, bank_id=found.bank_id, before=before, after=snapshot(found))
            marked += 1
    return marked


# ---- reading ------------------------------------------------------------------------------------


def _visible(actor: Actor):
    # access.for_staff narrows to the actor's bank alone; all-bank entries apply to every bank,
    # so a bank's staff see those too (read only: adding and lifting them is refused above).
    access.require(actor, READ)
    if actor.is_association:
        return ListEntry.all()
    return ListEntry.filter(Q(bank_id=actor.bank_id) | Q(bank_id__isnull=True))


def entries(actor: Actor, *, level: str | None = None, status: str | None = None):
    """The entries the staff member may see, newest last; ``status`` is the effective status
    (an active entry past its expiry counts as expired)."""
    query = _visible(actor)
    if level is not None:
        if level not in LEVELS:
            raise UnknownListLevel(details={"levels": list(LEVELS)})
        query = query.filter(level=level)
    now = clock.now()
    if status == ACTIVE:
        query = query.filter(status=ACTIVE).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    elif status == EXPIRED:
        query = query.filter(Q(status=EXPIRED) | Q(status=ACTIVE, expires_at__lte=now))
    elif status is not None:
        query = query.filter(status=status)
    return query.order_by("id")


async def entry(actor: Actor, entry_id: int) -> ListEntry:
    found = await _visible(actor).filter(id=access.as_object_id(entry_id, NotFound("no such list entry"))).first()
    if found is None:
        raise NotFound("no such list entry")
    return found


def effective_status(found: ListEntry, at: datetime) -> str:
    if found.status == ACTIVE and found.expires_at is not None and found.expires_at <= at:
        return EXPIRED
    return found.status


# ---- screening ----------------------------------------------------------------------------------


async def screen(
    *,
    bank_id: int,
    id_number_hash: str | None = None,
    phone_hash: str | None = None,
    unionid_hash: str | None = None,
    at: datetime,
) -> Screening:
    """The lists' verdict on a person applying to ``bank_id`` at ``at``: entries of that bank or
    of all banks, active and unexpired, matching any given key. A pure read for the lending core
    itself, so no permission is checked. Hashes are ``pii.lookup_hash`` values, as ``Customer``
    and ``CustomerIdentity`` store them."""
    return await _screen(
        bank_id=bank_id,
        id_number_hashes=[id_number_hash] if id_number_hash else [],
        phone_hashes=[phone_hash] if phone_hash else [],
        unionid_hashes=[unionid_hash] if unionid_hash else [],
        at=at,
    )


async def screen_customer(customer_id: int, *, bank_id: int, at: datetime) -> Screening:
    """``screen`` over every key the customer is known by: their ID number, their phones and
    their WeChat unionid."""
    customer = await Customer.filter(id=customer_id).first()
    if customer is None:
        raise NotFound("no such customer")
    identities = await CustomerIdentity.filter(customer_id=customer_id).values_list("kind", "issuer", "value_hash")
    ids = {customer.id_number_hash} | {h for kind, _, h in identities if kind == ID_NUMBER}
    phones = {customer.phone_hash} | {h for kind, _, h in identities if kind == PHONE}
    unionids = {h for kind, issuer, h in identities if kind == WECHAT_UNIONID and issuer == UNIONID_ISSUER}
    return await _screen(
        bank_id=bank_id,
        id_number_hashes=sorted(ids - {None}),
        phone_hashes=sorted(phones - {None}),
        unionid_hashes=sorted(unionids),
        at=at,
    )


def matching_entries_sql(*, bank: str, at: str, keys: dict[str, list[str]]) -> str:
    """The one definition of a list match, as SQL: entries of the bank or of all banks, active
    and unexpired at ``at``, sharing any of ``keys`` (column → SQL expressions: placeholders, or
    columns of an enclosing query, as the application case read embeds it). Strongest first."""
    matches = " OR ".join(f"e.{column} IN ({', '.join(values)})" for column, values in keys.items() if values)
    strength = " ".join(f"WHEN '{level}' THEN {rank}" for rank, level in enumerate(LEVELS))
    return (
        f"SELECT e.id, e.level FROM risk_list_entry e WHERE e.status = '{ACTIVE}' "
        f"AND (e.bank_id = {bank} OR e.bank_id IS NULL) AND (e.expires_at IS NULL OR e.expires_at > {at}) "
        f"AND ({matches}) ORDER BY CASE e.level {strength} ELSE {len(LEVELS)} END, e.id"
    )


async def _screen(*, bank_id: int, id_number_hashes: list[str], phone_hashes: list[str], unionid_hashes: list[str], at: datetime) -> Screening:
    if at.tzinfo is None:
        raise ValueError("screening needs a timezone-aware time")
    keys, params = {}, {"bank": bank_id, "at": at}
    for column, hashes in zip(KEY_COLUMNS, (id_number_hashes, phone_hashes, unionid_hashes)):
        placeholders, values = sql.in_list(column, hashes)
        keys[column] = [placeholders] if hashes else []
        params.update(values)
    if not params.keys() - {"bank", "at"}:
        return Screening(level=None)
    rows = await sql.fetch_all(matching_entries_sql(bank=":bank", at=":at", keys=keys), **params)
    hits = [row for row in rows if row["level"] in LEVELS]
    if not hits:
        return Screening(level=None)
    return Screening(level=hits[0]["level"], entry_ids=tuple(row["id"] for row in hits))


def _any_key(hashes_by_column: dict[str, list[str]]) -> Q:
    """Matches an entry sharing any one of the hashes (the caller gives at least one)."""
    return Q(*[Q(**{f"{column}__in": hashes}) for column, hashes in hashes_by_column.items() if hashes], join_type=Q.OR)


def snapshot(found: ListEntry) -> dict:
    return {
        "level": found.level,
        "bank_id": found.bank_id,
        "id_number_masked": found.id_number_masked,
        "phone_masked": found.phone_masked,
        "has_unionid": found.unionid_hash is not None,
        "source": found.source,
        "reason": found.reason,
        "status": found.status,
        "expires_at": found.expires_at.isoformat() if found.expires_at else None,
    }
