from __future__ import annotations

import asyncio
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock
from infra.audit import AuditEntry
from infra.actors import Actor
from infra.errors import InvalidInput, NotFound
from infra.identity_numbers import validate_phone
from lending_core import access
from lending_core.approvals import service as approvals
from lending_core.approvals.models import ChangeRequest
from lending_core.org import passwords, roles
from lending_core.org.errors import AccountDisabled, AccountLocked, InvalidCredentials, UsernameTaken
from lending_core.org.models import Bank, Branch, Staff


def staff_actor(staff: Staff) -> Actor:
    return Actor(kind="staff", id=staff.id, bank_id=staff.bank_id, roles=frozenset(staff.roles))


async def authenticate(username: str, password: str, *, max_failures: int, lockout_seconds: int) -> Staff:
    """Check a staff sign-in; lock the account for a while after ``max_failures`` wrong passwords."""
    staff = await Staff.filter(username=username).first()
    if staff is None:
        await asyncio.to_thread(passwords.verify_password, password, passwords.dummy_hash())
        raise InvalidCredentials()
    now = clock.now()
    if staff.locked_until and staff.locked_until > now:
        raise AccountLocked(retry_after=int((staff.locked_until - now).total_seconds()) + 1)
    if not await asyncio.to_thread(passwords.verify_password, password, staff.password_hash):
        await _count_failure(staff.id, now, max_failures=max_failures, lockout_seconds=lockout_seconds)
        raise InvalidCredentials()
    if not staff.is_active:
        raise AccountDisabled()
    if staff.failed_logins or staff.locked_until:
        await Staff.filter(id=staff.id).update(failed_logins=0, locked_until=None)
    return staff


async def _count_failure(staff_id: int, now, *, max_failures: int, lockout_seconds: int) -> None:
    # Re-read under a row lock: parallel wrong guesses must each count, or they would never lock.
    async with in_transaction():
        staff = await Staff.filter(id=staff_id).select_for_update().get()
        failures = staff.failed_logins + 1
        locked_until = now + timedelta(seconds=lockout_seconds) if failures >= max_failures else None
        await Staff.filter(id=staff_id).update(failed_logins=0 if locked_until else failures, locked_until=locked_until)
        if locked_until:
            await audit.record(staff_actor(staff), "staff.locked", "staff", staff.id, bank_id=staff.bank_id)


async def current_staff(staff_id: int) -> Staff:
    staff = await Staff.filter(id=staff_id, is_active=True).first()
    if staff is None:
        raise InvalidCredentials("this staff account no longer exists or is disabled")
    return staff


async def create_staff(
    actor: Actor,
    *,
    bank_id: int | None,
    branch_id: int | None,
    username: str,
    name: str,
    phone: str | None,
    staff_roles: list[str],
    password: str,
) -> Staff:
    access.require(actor, "staff.manage")
    if bank_id is None and not actor.is_association:
        bank_id = actor.bank_id  # a bank admin creates staff of their own bank
    access.check_bank_visible(actor, bank_id)
    if bank_id is not None:
        await get_bank(bank_id)
    if branch_id is not None:
        branch = await access.get_for_staff(Branch, actor, branch_id, permission="org.read")
        if branch.bank_id != bank_id:
            raise InvalidInput("the branch belongs to another bank")
    validated = roles.validate_roles(staff_roles, association_staff=bank_id is None)
    phone = validate_phone(phone) if phone else None
    try:
        passwords.check_strength(password)
    except passwords.WeakPassword as exc:
        raise InvalidInput(str(exc)) from None
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    try:
        async with in_transaction():
            staff = await Staff.create(
                bank_id=bank_id,
                branch_id=branch_id,
                username=username,
                name=name,
                phone=phone,
                roles=validated,
                password_hash=password_hash,
            )
            await audit.record(actor, "staff.create", "staff", staff.id, bank_id=bank_id, after=staff_snapshot(staff))
    except IntegrityError:
        raise UsernameTaken() from None
    return staff


async def propose_roles(actor: Actor, staff_id: int, new_roles: list[str], reason: str) -> ChangeRequest:
    """Changing someone's roles grants power, so it is a maker-checker change."""
    staff = await access.get_for_staff(Staff, actor, staff_id, permission="staff.manage")
    roles.validate_roles(new_roles, association_staff=staff.bank_id is None)
    return await approvals.propose(
        actor,
        "staff.set_roles",
        bank_id=staff.bank_id,
        target_type="staff",
        target_id=staff.id,
        payload={"roles": sorted(set(new_roles))},
        reason=reason,
    )


async def _apply_roles(change: ChangeRequest, checker: Actor) -> None:
    staff = await Staff.filter(id=int(change.target_id)).select_for_update().first()
    if staff is None:
        raise NotFound("the staff member no longer exists")
    before = staff_snapshot(staff)
    staff.roles = roles.validate_roles(change.payload["roles"], association_staff=staff.bank_id is None)
    await staff.save(update_fields=["roles"])
    await audit.record(checker, "staff.set_roles", "staff", staff.id, bank_id=staff.bank_id, before=before, after=staff_snapshot(staff))


approvals.register(
    approvals.ChangeKind(
        name="staff.set_roles", propose_permission="staff.manage", approve_permission="staff.manage", apply=_apply_roles
    )
)


def staff_snapshot(staff: Staff) -> dict:
    return {"username": staff.username, "name": staff.name, "bank_id": staff.bank_id, "branch_id": staff.branch_id, "roles": staff.roles}


async def get_bank(bank_id: int) -> Bank:
    bank = await Bank.filter(id=bank_id, is_active=True).first()
    if bank is None:
        raise NotFound("no such bank")
    return bank


def banks(actor: Actor):
    return access.for_staff(Bank, actor, permission="org.read", bank_field="id").filter(is_active=True).order_by("id")


async def bank_for(actor: Actor, bank_id: int) -> Bank:
    return await access.get_for_staff(Bank, actor, bank_id, permission="org.read", bank_field="id")


def branches(actor: Actor, *, bank_id: int | None = None):
    query = access.for_staff(Branch, actor, permission="org.read")
    return (query.filter(bank_id=bank_id) if bank_id is not None else query).order_by("id")


async def branch_for(actor: Actor, branch_id: int) -> Branch:
    return await access.get_for_staff(Branch, actor, branch_id, permission="org.read")


def staff_members(actor: Actor, *, branch_id: int | None = None):
    query = access.for_staff(Staff, actor, permission="org.read")
    return (query.filter(branch_id=branch_id) if branch_id is not None else query).order_by("id")


async def staff_member(actor: Actor, staff_id: int) -> Staff:
    return await access.get_for_staff(Staff, actor, staff_id, permission="org.read")


def audit_trail(actor: Actor, *, object_type: str | None = None, object_id: str | None = None):
    query = access.for_staff(AuditEntry, actor, permission="audit.read")
    if object_type:
        query = query.filter(object_type=object_type)
    if object_id:
        query = query.filter(object_id=object_id)
    return query


async def bank_choices(*, city: str | None, county: str | None) -> list[Bank]:
    """Member banks a new mini-program customer can choose from, by where they live."""
    query = Bank.filter(is_active=True)
    if city:
        query = query.filter(city=city)
    if county:
        query = query.filter(county=county)
    return await query.order_by("id")
