"""A referred person's funnel: registered → applied → approved on real applications through the
API, → disbursed on the loans' outbox message; repeated, reordered and other banks' events."""

from __future__ import annotations


import pytest
from tortoise.transactions import in_transaction

from infra import outbox, pii
from infra.errors import IllegalTransition
from infra.outbox import OutboxMessage, relay_once
from lending_core.applications.models import Application
from lending_core.customers.models import Customer as CustomerRow
from lending_core.org.models import Bank
from marketing import funnel
from marketing.funnel import FUNNEL, STAGES, steps
from marketing.models import InviteReferral
from server.handlers import outbox_handlers
from tests.lending.flows import SHUIYITONG, Customer, Staff, id_number_of, new_phone
from tests.marketing.support import LOGIN, customer_code, device, login_code, new_customer, staff_code, wechat_user


# ---- the table -----------------------------------------------------------------------------------


def test_the_funnel_table_moves_one_stage_at_a_time_and_refuses_the_rest():
    allowed = {(event, source): target for (event, source), target in FUNNEL.pairs()}
    assert allowed == {("apply", "registered"): "applied", ("approve", "applied"): "approved", ("disburse", "approved"): "disbursed"}
    for stage in STAGES:
        for event in FUNNEL.events:
            if (event, stage) not in allowed:
                with pytest.raises(IllegalTransition):
                    FUNNEL.next(stage, event)


@pytest.mark.parametrize(
    "stage, target, events",
    [
        ("registered", "applied", ["apply"]),
        ("registered", "disbursed", ["apply", "approve", "disburse"]),
        ("applied", "approved", ["approve"]),
        ("approved", "applied", []),
        ("disbursed", "approved", []),
        ("approved", "approved", []),
    ],
)
def test_steps_only_ever_go_forward(stage, target, events):
    assert steps(stage, target) == events


# ---- through the API -----------------------------------------------------------------------------


async def referred_applicant(client, code: str, persona: str = "small_firm", n: int = 0) -> Customer:
    """Someone who opened the mini-program with ``code``, then verified and consented."""
    person = Customer(client, name="林志远", id_number=id_number_of(persona, n), phone=new_phone())
    person.wechat_user = wechat_user()
    _, response = await client.post(LOGIN, json={"code": login_code(person.wechat_user), "scene": code, "device_id": device()})
    assert response.status == 200, response.text
    assert response.json["referral"]["bound"] is True, response.json
    person._signed_in(response.json)
    await person.verify_real_name()
    await person.consent(*SHUIYITONG.consents)
    return person


async def relay(app) -> None:
    while await relay_once(outbox_handlers(app.ctx.settings, app.ctx.providers)):
        pass


async def referral_of(person: Customer) -> InviteReferral:
    return await InviteReferral.get(referee_id=person.customer_id)


async def disbursed(person: Customer, *, principal_fen: int = 5_000_000, bank: str = "HZRCB", **extra) -> None:
    bank_id = (await Bank.get(code=bank)).id
    async with in_transaction():
        await outbox.enqueue(
            funnel.LOAN_DISBURSED_TOPIC,
            {"loan_id": 4242, "contract_id": None, "customer_id": person.customer_id, "principal_fen": principal_fen, "drawn_on": "2026-11-30", **extra},
            bank_id=bank_id,
        )


async def test_an_approved_application_moves_the_referral_to_approved_then_a_loan_to_disbursed(app, client, demo):
    person = await referred_applicant(client, (await staff_code("hz.manager")).code)
    assert (await referral_of(person)).stage == "registered"

    application = await person.applied()
    assert application["status"] == "approved"
    await relay(app)

    referral = await referral_of(person)
    assert referral.stage == "approved"
    assert referral.application_id == application["id"]
    assert referral.bound_at <= referral.applied_at <= referral.approved_at

    await disbursed(person)
    await relay(app)

    referral = await referral_of(person)
    assert referral.stage == "disbursed"
    assert (referral.loan_id, referral.disbursed_principal_fen) == (4242, 5_000_000)
    assert referral.disbursed_at >= referral.approved_at
    stages = [m.payload["stage"] for m in await OutboxMessage.filter(topic="marketing.referral_advanced").order_by("id")]
    assert stages == ["registered", "approved", "disbursed"]


async def test_a_manual_review_is_applied_and_its_approval_approved(app, client, demo):
    staff = Staff(client)
    person = await referred_applicant(client, (await staff_code("hz.manager")).code, "unavailable")

    application = await person.applied()
    assert application["status"] == "manual_review"
    await relay(app)
    assert (await referral_of(person)).stage == "applied"

    reviewed = await staff.review("hz.senior", application["id"], "approve", limit_yuan=50_000)
    assert reviewed.status == 200, reviewed.text
    await relay(app)

    referral = await referral_of(person)
    assert referral.stage == "approved"
    assert referral.approved_at > referral.applied_at


async def test_the_staff_member_who_brought_the_applicant_cannot_review_the_application(app, client, demo):
    staff = Staff(client)
    person = await referred_applicant(client, (await staff_code("hz.senior")).code, "unavailable")

    application = await person.applied()
    assert application["status"] == "manual_review"
    referrer = (await staff_code("hz.senior")).staff_id
    assert (await Application.get(id=application["id"])).referred_by_staff_id == referrer

    refused = await staff.review("hz.senior", application["id"], "approve", limit_yuan=50_000)
    assert (refused.status, refused.json["error"]["code"]) == (403, "REVIEWER_IS_REFERRER")
    assert (await Application.get(id=application["id"])).status == "manual_review"


async def test_a_rejection_leaves_the_referral_applied(app, client, demo):
    person = await referred_applicant(client, (await staff_code("hz.manager")).code, "dishonest_debtor")

    application = await person.applied()
    assert application["status"] == "rejected"
    await relay(app)

    assert (await referral_of(person)).stage == "applied"


async def test_the_same_event_twice_and_an_old_event_late_change_nothing(app, client, demo):
    person = await referred_applicant(client, (await staff_code("hz.manager")).code)
    application = await person.applied()
    await relay(app)
    await disbursed(person)
    await relay(app)
    before = await referral_of(person)

    decided = await OutboxMessage.get(topic="lending.application_decided")
    await funnel.on_application_decided(decided)  # a late duplicate of the approval
    await disbursed(person, principal_fen=1)  # and a second disbursement (another drawdown)
    await relay(app)

    after = await referral_of(person)
    assert (after.stage, after.approved_at, after.disbursed_at, after.disbursed_principal_fen) == (
        "disbursed", before.approved_at, before.disbursed_at, before.disbursed_principal_fen
    )
    assert after.application_id == application["id"]


async def test_a_disbursement_heard_first_passes_through_the_stages_it_skipped(app, client, demo):
    person = await referred_applicant(client, (await staff_code("hz.manager")).code)

    await disbursed(person)
    await relay(app)

    referral = await referral_of(person)
    assert referral.stage == "disbursed"
    assert referral.applied_at and referral.approved_at and referral.disbursed_at


async def test_another_banks_events_do_not_advance_the_referral(app, client, demo):
    person = await referred_applicant(client, (await staff_code("hz.manager")).code)

    await disbursed(person, bank="LSRCB")
    await relay(app)

    assert (await referral_of(person)).stage == "registered"


async def test_a_referee_who_turns_out_to_have_the_inviters_phone_is_voided_on_the_way(app, client, demo):
    number = new_phone()
    inviter = await new_customer(phone=number)
    code = await customer_code(inviter, bank="HZRCB")
    person = await referred_applicant(client, code.code)  # verified with a phone of their own
    # …then binds the inviter's phone through WeChat: the funnel re-checks as it advances.
    await CustomerRow.filter(id=person.customer_id).update(phone_hash=pii.lookup_hash("phone", number))

    await disbursed(person)
    await relay(app)

    referral = await referral_of(person)
    assert referral.void_reason == "self_referral_phone"
    assert referral.voided_at is not None
    assert referral.stage == "disbursed", "the history is kept"
    assert [m.payload["stage"] for m in await OutboxMessage.filter(topic="marketing.referral_advanced")] == ["registered"]


async def test_a_person_without_a_referral_is_ignored(app, client, demo):
    outsider = await new_customer()
    person = Customer(client, name="x", id_number="", phone="")
    person.customer_id = outsider.id

    await disbursed(person)
    await relay(app)

    assert await InviteReferral.all().count() == 0
    assert await OutboxMessage.filter(topic=funnel.LOAN_DISBURSED_TOPIC, status="sent").count() == 1
