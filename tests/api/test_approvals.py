"""Maker-checker changes: a staff member's new roles take effect only when a second person with
the same power approves them."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from infra import pii
from infra.audit import AuditEntry
from infra.errors import IllegalTransition
from infra.transitions import TransitionTable
from lending_core.approvals import service as approvals
from lending_core.approvals.models import ChangeRequest
from lending_core.org.models import Staff
from tests.support import StaffConsole

CHANGES = "/api/v1/admin/change-requests"
TARGET = "hz.manager"
OLD_ROLES = ["account_manager"]
NEW_ROLES = ["account_manager", "reviewer"]


class Console(StaffConsole):
    """Signs staff in once each and makes their requests."""

    async def propose(self, username: str, staff_id: int, roles: list[str], reason: str = "takes over credit reviews"):
        _, response = await self.client.post(
            f"/api/v1/admin/staff/{staff_id}/roles", json={"roles": roles, "reason": reason}, headers=await self.headers(username)
        )
        return response

    async def decide(self, username: str, change_id: int, action: str, note: str | None = None):
        body = {} if action == "withdraw" else {"note": note}
        kwargs = {"json": body} if body else {}
        _, response = await self.client.post(f"{CHANGES}/{change_id}/{action}", headers=await self.headers(username), **kwargs)
        return response

    async def get(self, username: str, path: str):
        _, response = await self.client.get(path, headers=await self.headers(username))
        return response


@pytest.fixture
def console(client, demo) -> Console:
    return Console(client)


async def staff_id(username: str) -> int:
    return (await Staff.get(username=username)).id


async def roles_of(username: str) -> list[str]:
    return (await Staff.get(username=username)).roles


async def pending_change(console: Console, proposer: str = "hz.admin") -> int:
    response = await console.propose(proposer, await staff_id(TARGET), NEW_ROLES)
    assert response.status == 202, response.text
    return response.json["id"]


def error_code(response) -> str:
    return response.json["error"]["code"]


def audit_rows(action: str, object_type: str, object_id: int):
    return AuditEntry.filter(action=action, object_type=object_type, object_id=str(object_id))


# --- propose -----------------------------------------------------------------------------------


async def test_proposing_roles_creates_a_pending_change_and_changes_nothing_yet(console):
    target = await staff_id(TARGET)

    response = await console.propose("hz.admin", target, ["reviewer", "account_manager", "reviewer"])

    assert response.status == 202
    change = response.json
    assert change["status"] == "pending"
    assert change["kind"] == "staff.set_roles"
    assert (change["target_type"], change["target_id"]) == ("staff", str(target))
    assert change["payload"] == {"roles": NEW_ROLES}
    assert change["proposed_by_id"] == await staff_id("hz.admin")
    assert change["bank_id"] == (await Staff.get(username="hz.admin")).bank_id
    assert change["decided_by_id"] is None
    assert await roles_of(TARGET) == OLD_ROLES
    assert await audit_rows("change.propose", "change_request", change["id"]).count() == 1
    assert await AuditEntry.filter(action="staff.set_roles").count() == 0


@pytest.mark.parametrize(
    "roles",
    [pytest.param(["no_such_role"], id="unknown"), pytest.param(["association_admin"], id="association-role-for-bank-staff")],
)
async def test_proposing_invalid_roles_is_refused(console, roles):
    response = await console.propose("hz.admin", await staff_id(TARGET), roles)

    assert response.status == 422
    assert error_code(response) == "INVALID_ROLES"
    assert await ChangeRequest.all().count() == 0


async def test_proposing_bank_roles_for_association_staff_is_refused(console):
    response = await console.propose("assoc.admin", await staff_id("assoc.product"), ["bank_admin"])

    assert (response.status, error_code(response)) == (422, "INVALID_ROLES")
    assert await ChangeRequest.all().count() == 0


async def test_only_staff_managers_can_propose(console):
    response = await console.propose("hz.marketer", await staff_id(TARGET), NEW_ROLES)

    assert (response.status, error_code(response)) == (403, "FORBIDDEN")
    assert await ChangeRequest.all().count() == 0


async def test_another_bank_cannot_propose_for_our_staff(console):
    response = await console.propose("ls.admin", await staff_id(TARGET), NEW_ROLES)

    assert (response.status, error_code(response)) == (404, "NOT_FOUND")
    assert await ChangeRequest.all().count() == 0


# --- approve -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_the_proposer_cannot_decide_their_own_change(console, action):
    change_id = await pending_change(console)

    response = await console.decide("hz.admin", change_id, action)

    assert (response.status, error_code(response)) == (403, "SELF_APPROVAL")
    assert (await ChangeRequest.get(id=change_id)).status == "pending"
    assert await roles_of(TARGET) == OLD_ROLES
    assert await AuditEntry.filter(action__in=["change.approve", "change.reject", "staff.set_roles"]).count() == 0


async def test_a_second_admin_approves_and_the_roles_change(console):
    change_id = await pending_change(console)
    proposer, checker, target = [await Staff.get(username=u) for u in ("hz.admin", "hz.admin2", TARGET)]

    response = await console.decide("hz.admin2", change_id, "approve", note="checked with the branch head")

    assert response.status == 200
    assert response.json["status"] == "applied"
    assert response.json["decided_by_id"] == checker.id
    assert response.json["decision_note"] == "checked with the branch head"
    assert response.json["decided_at"] is not None
    assert await roles_of(TARGET) == NEW_ROLES

    proposed = await audit_rows("change.propose", "change_request", change_id).get()
    assert (proposed.actor_kind, proposed.actor_id) == ("staff", str(proposer.id))
    approved = await audit_rows("change.approve", "change_request", change_id).get()
    assert approved.actor_id == str(checker.id)
    assert (approved.before["status"], approved.after["status"]) == ("pending", "applied")
    applied = await audit_rows("staff.set_roles", "staff", target.id).get()
    assert applied.actor_id == str(checker.id)
    assert applied.before["roles"] == OLD_ROLES
    assert applied.after["roles"] == NEW_ROLES
    assert applied.after["name"] == pii.mask_name(target.name) != target.name


async def test_approving_twice_is_an_illegal_transition(console):
    change_id = await pending_change(console)
    assert (await console.decide("hz.admin2", change_id, "approve")).status == 200

    again = await console.decide("hz.admin2", change_id, "approve")

    assert (again.status, error_code(again)) == (409, "ILLEGAL_TRANSITION")
    assert await audit_rows("staff.set_roles", "staff", await staff_id(TARGET)).count() == 1
    assert await AuditEntry.filter(action="change.approve").count() == 1


async def test_staff_without_staff_manage_cannot_approve_or_reject(console):
    change_id = await pending_change(console)

    for action in ("approve", "reject"):
        response = await console.decide("hz.marketer", change_id, action)
        assert (response.status, error_code(response)) == (403, "FORBIDDEN")

    assert (await ChangeRequest.get(id=change_id)).status == "pending"
    assert await roles_of(TARGET) == OLD_ROLES


async def test_another_bank_can_neither_see_nor_decide_the_change(console):
    change_id = await pending_change(console)

    seen = await console.get("ls.admin", f"{CHANGES}/{change_id}")
    assert (seen.status, error_code(seen)) == (404, "NOT_FOUND")
    listed = await console.get("ls.admin", CHANGES)
    assert listed.status == 200
    assert change_id not in [item["id"] for item in listed.json["items"]]
    for action in ("approve", "reject", "withdraw"):
        response = await console.decide("ls.admin", change_id, action)
        assert (response.status, error_code(response)) == (404, "NOT_FOUND")

    assert (await ChangeRequest.get(id=change_id)).status == "pending"
    assert await roles_of(TARGET) == OLD_ROLES


async def test_the_bank_itself_sees_the_change(console):
    change_id = await pending_change(console)

    seen = await console.get("hz.admin2", f"{CHANGES}/{change_id}")
    listed = await console.get("hz.admin2", f"{CHANGES}?status=pending")

    assert seen.status == 200
    assert seen.json["status"] == "pending"
    assert [item["id"] for item in listed.json["items"]] == [change_id]


async def test_two_checkers_approving_at_once_apply_the_change_once(console):
    change_id = await pending_change(console)
    for checker in ("hz.admin2", "assoc.admin"):
        await console.headers(checker)  # sign in first, so the two approvals really overlap

    responses = await asyncio.gather(
        console.decide("hz.admin2", change_id, "approve"), console.decide("assoc.admin", change_id, "approve")
    )

    assert sorted(r.status for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status == 409)
    assert error_code(loser) == "ILLEGAL_TRANSITION"
    assert (await ChangeRequest.get(id=change_id)).status == "applied"
    assert await roles_of(TARGET) == NEW_ROLES
    assert await AuditEntry.filter(action="change.approve").count() == 1
    assert await AuditEntry.filter(action="staff.set_roles").count() == 1


# --- reject and withdraw -----------------------------------------------------------------------


async def test_a_rejected_change_cannot_be_approved(console):
    change_id = await pending_change(console)

    rejected = await console.decide("hz.admin2", change_id, "reject", note="not trained yet")

    assert rejected.status == 200
    assert rejected.json["status"] == "rejected"
    assert rejected.json["decided_by_id"] == await staff_id("hz.admin2")
    assert rejected.json["decision_note"] == "not trained yet"
    assert await audit_rows("change.reject", "change_request", change_id).count() == 1

    for checker, action in (("hz.admin2", "approve"), ("assoc.admin", "approve"), ("hz.admin2", "reject")):
        response = await console.decide(checker, change_id, action)
        assert (response.status, error_code(response)) == (409, "ILLEGAL_TRANSITION")
    withdrawn = await console.decide("hz.admin", change_id, "withdraw")
    assert (withdrawn.status, error_code(withdrawn)) == (409, "ILLEGAL_TRANSITION")
    assert await roles_of(TARGET) == OLD_ROLES


async def test_the_proposer_can_withdraw_a_pending_change(console):
    change_id = await pending_change(console)

    response = await console.decide("hz.admin", change_id, "withdraw")

    assert response.status == 200
    assert response.json["status"] == "withdrawn"
    assert response.json["decided_by_id"] is None
    assert await audit_rows("change.withdraw", "change_request", change_id).count() == 1
    approved = await console.decide("hz.admin2", change_id, "approve")
    assert (approved.status, error_code(approved)) == (409, "ILLEGAL_TRANSITION")
    assert await roles_of(TARGET) == OLD_ROLES


@pytest.mark.parametrize("other", ["hz.admin2", "hz.marketer", "assoc.admin"])
async def test_only_the_proposer_can_withdraw(console, other):
    change_id = await pending_change(console)

    response = await console.decide(other, change_id, "withdraw")

    assert (response.status, error_code(response)) == (403, "FORBIDDEN")
    assert (await ChangeRequest.get(id=change_id)).status == "pending"
    assert await AuditEntry.filter(action="change.withdraw").count() == 0


async def test_an_applied_change_cannot_be_withdrawn_or_rejected(console):
    change_id = await pending_change(console)
    assert (await console.decide("hz.admin2", change_id, "approve")).status == 200

    withdrawn = await console.decide("hz.admin", change_id, "withdraw")
    rejected = await console.decide("assoc.admin", change_id, "reject")

    assert (withdrawn.status, error_code(withdrawn)) == (409, "ILLEGAL_TRANSITION")
    assert (rejected.status, error_code(rejected)) == (409, "ILLEGAL_TRANSITION")
    assert await roles_of(TARGET) == NEW_ROLES


# --- the transition table, walked whole (STYLE rule 3) -----------------------------------------

EXPECTED_TABLE = {
    ("approve", "pending"): "applied",
    ("reject", "pending"): "rejected",
    ("withdraw", "pending"): "withdrawn",
}
STATUSES = ["pending", "applied", "rejected", "withdrawn"]
EVENTS = ["approve", "reject", "withdraw"]


def test_the_change_request_table_is_the_expected_one():
    assert dict(approvals.STATUS.pairs()) == EXPECTED_TABLE
    assert approvals.STATUS.statuses == set(STATUSES)
    assert approvals.STATUS.events == set(EVENTS)


@pytest.mark.parametrize(("event", "status"), list(itertools.product(EVENTS, STATUSES)))
def test_every_event_from_every_status(event, status):
    if (event, status) in EXPECTED_TABLE:
        assert approvals.STATUS.next(status, event) == EXPECTED_TABLE[(event, status)]
        return
    with pytest.raises(IllegalTransition) as refused:
        approvals.STATUS.next(status, event)
    assert refused.value.details["status"] == status
    assert refused.value.details["event"] == event
    assert refused.value.details["allowed_events"] == approvals.STATUS.events_from(status)


@pytest.mark.parametrize(("event", "status"), [("approve", "draft"), ("publish", "pending"), ("", "")])
def test_unknown_events_and_statuses_raise_too(event, status):
    with pytest.raises(IllegalTransition):
        approvals.STATUS.next(status, event)


def test_a_transition_table_refuses_what_it_does_not_list():
    table = TransitionTable("lamp", {("switch_on", "off"): "on", ("switch_off", "on"): "off"})

    assert table.next("off", "switch_on") == "on"
    assert table.events_from("off") == ["switch_on"]
    with pytest.raises(IllegalTransition, match="lamp: cannot switch_on when on"):
        table.next("on", "switch_on")
