"""The whole sunshine-loan (阳光E贷) contract through HTTP: the borrower asks for the contract
naming a guarantor who is already a customer and a co-borrower who is not; the co-borrower is
invited by SMS, logs in on the mini-program, binds that phone, verifies their real name and
signs; the contract becomes effective, the outbox carries the event, the evidence verifies."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from infra import clock
from infra.outbox import OutboxMessage
from lending_core.applications.models import Application
from lending_core.contracts import rendering
from lending_core.contracts.models import Contract, ContractParty, EvidenceRecord
from lending_core.loans.schedule import build_schedule, due_date, penalty_rate_bps
from tests.contracts.flows import (
    CONTRACTS,
    LOAN,
    YANGGUANGEDAI,
    approved_borrower,
    ask_for_contract,
    contract_path,
    error_code,
    party,
    relay_contract_messages,
    signs,
    stranger,
    verified_customer,
)

pytestmark = pytest.mark.usefixtures("demo")


async def test_a_sunshine_loan_contract_is_signed_by_all_three_and_takes_effect(app, client):
    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = stranger(client, name="陈美玲")

    made = await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])

    assert made.status == 201, made.text
    contract = made.json
    assert contract["status"] == "awaiting_signatures"
    assert contract["my_role"] == "borrower"
    roles = {p["role"]: p for p in contract["parties"]}
    assert set(roles) == {"borrower", "guarantor", "co_borrower"}
    assert roles["guarantor"]["is_customer"] and roles["guarantor"]["invited_at"] is None
    assert not roles["co_borrower"]["is_customer"] and roles["co_borrower"]["invited_at"] is not None
    stored = await Contract.get(id=contract["id"])
    assert stored.limit_fen == (await Application.get(id=application["id"])).limit_fen
    assert stored.rate_bps == application["annual_rate_bps"]
    assert stored.penalty_rate_bps == penalty_rate_bps(stored.rate_bps, YANGGUANGEDAI.servicing.penalty_uplift_bps)
    assert (stored.term_months, stored.repayment_method) == (LOAN["term_months"], LOAN["repayment_method"])
    assert stored.template == "sunshine_credit_loan"
    waits = stored.sign_by - stored.created_at
    assert abs(waits - timedelta(days=YANGGUANGEDAI.servicing.signing_days)) < timedelta(minutes=1)
    assert (await borrower.application(application["id"]))["status"] == "contracted"

    # The invitations go out after commit, through the outbox.
    assert app.ctx.providers.sms.last_text(co_borrower.phone) is None
    await relay_contract_messages(app)
    invitation = app.ctx.providers.sms.last_text(co_borrower.phone)
    assert invitation and "小程序" in invitation and "共同借款人" in invitation
    assert "保证人" in app.ctx.providers.sms.last_text(guarantor.phone)

    # The borrower reads the document and signs.
    read = await borrower.get(contract_path(contract["id"]))
    assert read.status == 200, read.text
    document = read.json["document_html"]
    assert rendering.document_sha256(document) == contract["document_sha256"] == stored.document_sha256
    signed = await signs(app, borrower, contract["id"])
    assert signed["status"] == "awaiting_signatures"
    assert signed["my_signature"]["method"] == "sms_code"

    # The guarantor, already a customer, finds it among their contracts and signs.
    listed = await guarantor.get(CONTRACTS)
    assert [(c["id"], c["my_role"]) for c in listed.json["items"]] == [(contract["id"], "guarantor")]
    await signs(app, guarantor, contract["id"])

    # The co-borrower opens the mini-program from the SMS: logs in, binds the invited phone,
    # verifies their real name; then the contract is theirs to read and sign.
    await co_borrower.log_in("HZRCB")
    assert (await co_borrower.get(contract_path(contract["id"]))).status == 404  # not yet proved
    bound = await co_borrower.post("/api/v1/channels/wechat/phone", {"code": f"{co_borrower.phone}.invite"})
    assert bound.status == 200, bound.text
    await co_borrower.verify_real_name()
    listed = await co_borrower.get(CONTRACTS)
    assert [(c["id"], c["my_role"]) for c in listed.json["items"]] == [(contract["id"], "co_borrower")]
    assert (await co_borrower.get(contract_path(contract["id"]))).json["my_role"] == "co_borrower"
    effective = await signs(app, co_borrower, contract["id"])

    assert effective["status"] == "effective"
    stored = await Contract.get(id=contract["id"])
    co_party = await ContractParty.get(contract_id=contract["id"], role="co_borrower")
    assert co_party.customer_id == co_borrower.customer_id  # bound on signing in
    assert stored.effective_at is not None
    assert stored.line_expires_on == due_date(clock.business_date(stored.effective_at), YANGGUANGEDAI.servicing.credit_line_months)
    events = await OutboxMessage.filter(topic="contracts.contract_effective")
    assert [e.payload for e in events] == [{
        "contract_id": stored.id, "customer_id": borrower.customer_id, "bank_id": stored.bank_id,
        "application_id": application["id"], "limit_fen": stored.limit_fen,
        "line_expires_on": stored.line_expires_on.isoformat(),
    }]
    kinds = await EvidenceRecord.filter(contract_id=stored.id).order_by("sequence").values_list("kind", flat=True)
    assert kinds == ["generated", "viewed", "signed", "signed", "viewed", "signed", "effective"]

    report = await borrower.get(contract_path(contract["id"], "evidence"))
    assert report.status == 200, report.text
    body = report.json
    assert body["ok"] is True, body["first_failure"]
    assert body["document"] == {"sha256": stored.document_sha256, "recomputed_sha256": stored.document_sha256, "ok": True}
    assert [e["kind"] for e in body["timeline"]] == kinds
    assert all(e["link_ok"] and e["receipt_ok"] and e["receipt"] for e in body["timeline"])
    assert {s["role"]: s["method"] for s in body["signatures"]} == {"borrower": "sms_code", "guarantor": "sms_code", "co_borrower": "sms_code"}
    assert all(s["ip"] and s["channel"] == "wechat_miniprogram" for s in body["signatures"])
    signed_entries = [e for e in body["timeline"] if e["kind"] == "signed"]
    assert {e["detail"]["role"] for e in signed_entries} == {"borrower", "guarantor", "co_borrower"}
    assert all(e["document_sha256"] == stored.document_sha256 for e in body["timeline"])

    # Every party may read the report; so may staff of the bank.
    assert (await co_borrower.get(contract_path(contract["id"], "evidence"))).json["ok"] is True


async def test_the_document_states_the_terms_and_an_example_schedule_for_the_full_limit(client):
    borrower, application = await approved_borrower(client)
    guarantor, co_borrower = stranger(client, name="周海燕"), stranger(client, name="陈美玲", n=1)
    contract = (await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])).json

    stored = await Contract.get(id=contract["id"])
    document = stored.document_html
    schedule = build_schedule(stored.repayment_method, stored.limit_fen, stored.rate_bps, stored.term_months,
                              clock.business_date(stored.created_at))
    assert f"人民币 {stored.limit_fen // 100}.{stored.limit_fen % 100:02d} 元" in document
    assert rendering.percent_text(stored.rate_bps) in document
    assert rendering.percent_text(stored.penalty_rate_bps) in document
    assert "等额本息" in document and "Equal instalments" in document
    assert "APR equals the nominal annual rate" in document
    assert "罚息 → 利息 → 本金" in document
    assert f"{YANGGUANGEDAI.servicing.credit_line_months} 个月" in document
    assert "保证人自愿为借款人" in document and "共同借款人与借款人共同作为债务人" in document
    assert document.count("<tr><td>") == len(schedule.instalments) + 3 + 3  # schedule, parties, signatures
    last = schedule.instalments[-1]
    assert f"<td>{last.due_date.isoformat()}</td>" in document
    assert f"利息合计 / Total interest: 人民币 {schedule.total_interest_fen // 100}.{schedule.total_interest_fen % 100:02d} 元" in document


async def test_asking_again_returns_the_same_contract(client):
    borrower, application = await approved_borrower(client)
    parties = [party("guarantor", stranger(client, name="周海燕")), party("co_borrower", stranger(client, name="陈美玲", n=1))]

    first = await ask_for_contract(borrower, application["id"], parties, key="same-key")
    replayed = await ask_for_contract(borrower, application["id"], parties, key="same-key")
    again = await ask_for_contract(borrower, application["id"], parties)

    assert first.status == 201, first.text
    assert replayed.status == 201 and replayed.headers.get("Idempotent-Replayed") == "true"
    assert again.status == 200, again.text
    assert first.json["id"] == replayed.json["id"] == again.json["id"]
    assert await Contract.all().count() == 1
    assert await EvidenceRecord.all().count() == 1


async def test_a_contract_waits_for_every_party(app, client):
    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = await verified_customer(client, "deposit_holder", name="陈美玲")
    contract = (await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])).json

    await signs(app, co_borrower, contract["id"])
    after_two = await signs(app, borrower, contract["id"])

    assert after_two["status"] == "awaiting_signatures"
    assert await OutboxMessage.filter(topic="contracts.contract_effective").count() == 0
    assert (await signs(app, guarantor, contract["id"]))["status"] == "effective"


async def test_staff_of_the_bank_read_the_contract_and_its_evidence_without_adding_to_it(app, client):
    from infra.audit import AuditEntry
    from tests.lending.flows import Staff

    borrower, application = await approved_borrower(client)
    contract = (await ask_for_contract(borrower, application["id"], [
        party("guarantor", stranger(client, name="周海燕")), party("co_borrower", stranger(client, name="陈美玲", n=1))])).json
    staff = Staff(client)
    entries = await EvidenceRecord.filter(contract_id=contract["id"]).count()

    read = await staff.get("hz.reviewer", f"/api/v1/admin/contracts/{contract['id']}")
    report = await staff.get("hz.manager", f"/api/v1/admin/contracts/{contract['id']}/evidence")
    other_bank = await staff.get("ls.reviewer", f"/api/v1/admin/contracts/{contract['id']}")
    other_bank_report = await staff.get("ls.admin", f"/api/v1/admin/contracts/{contract['id']}/evidence")
    no_permission = await staff.get("hz.marketer", f"/api/v1/admin/contracts/{contract['id']}")
    association = await staff.get("assoc.admin", f"/api/v1/admin/contracts/{contract['id']}")

    assert read.status == 200, read.text
    assert read.json["customer_id"] == borrower.customer_id and read.json["document_html"]
    assert "is_me" not in str(read.json["parties"])
    assert report.status == 200 and report.json["timeline"][0]["kind"] == "generated"
    assert (other_bank.status, error_code(other_bank)) == (404, "CONTRACT_NOT_FOUND")
    assert (other_bank_report.status, error_code(other_bank_report)) == (404, "CONTRACT_NOT_FOUND")
    assert (no_permission.status, error_code(no_permission)) == (403, "FORBIDDEN")
    assert association.status == 200
    assert await EvidenceRecord.filter(contract_id=contract["id"]).count() == entries
    audited = await AuditEntry.filter(object_type="contract", object_id=str(contract["id"])).values_list("action", flat=True)
    assert {"contract.view", "contract.evidence_report"} <= set(audited)


async def test_each_customer_sees_only_their_own_contracts(app, client):
    borrower, application = await approved_borrower(client)
    contract = (await ask_for_contract(borrower, application["id"], [
        party("guarantor", stranger(client, name="周海燕")), party("co_borrower", stranger(client, name="陈美玲", n=1))])).json
    other, _ = await approved_borrower(client, 1, name="王丽")

    assert (await other.get(CONTRACTS)).json["items"] == []
    for path in (contract_path(contract["id"]), contract_path(contract["id"], "evidence")):
        response = await other.get(path)
        assert (response.status, error_code(response)) == (404, "CONTRACT_NOT_FOUND")
    for path in (contract_path(contract["id"], "signing-code"), contract_path(contract["id"], "sign")):
        response = await other.post(path, {"method": "sms_code", "code": "123456"} if path.endswith("sign") else {})
        assert (response.status, error_code(response)) == (404, "CONTRACT_NOT_FOUND")
    taken = await ask_for_contract(other, application["id"], [])
    assert taken.status == 404
    assert isinstance((await Contract.get(id=contract["id"])).sign_by, datetime)


async def test_the_contract_routes_are_described_in_openapi(settings, redis):
    from tests.support import openapi_document

    _, document = await openapi_document(settings, redis)
    paths = document["paths"]
    expected = {
        "/api/v1/applications/{application_id}/contract": "post",
        "/api/v1/contracts": "get",
        "/api/v1/contracts/{contract_id}": "get",
        "/api/v1/contracts/{contract_id}/signing-code": "post",
        "/api/v1/contracts/{contract_id}/sign": "post",
        "/api/v1/contracts/{contract_id}/evidence": "get",
        "/api/v1/admin/contracts/{contract_id}": "get",
        "/api/v1/admin/contracts/{contract_id}/evidence": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), path
        assert paths[path][method].get("summary"), path
    for path in ("/api/v1/contracts/{contract_id}/sign", "/api/v1/applications/{application_id}/contract"):
        assert "application/json" in paths[path]["post"]["requestBody"]["content"], path


async def test_concurrent_requests_make_one_contract_and_the_last_two_signatures_one_effective_event(app, client):
    import asyncio

    from tests.contracts.flows import sign_with_code, signing_code

    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = await verified_customer(client, "deposit_holder", name="陈美玲")
    parties = [party("guarantor", guarantor), party("co_borrower", co_borrower)]

    made = await asyncio.gather(*(ask_for_contract(borrower, application["id"], parties) for _ in range(3)))

    assert sorted(r.status for r in made) == [200, 200, 201], [r.text for r in made]
    assert len({r.json["id"] for r in made}) == 1 and await Contract.all().count() == 1
    contract_id = made[0].json["id"]
    await signs(app, borrower, contract_id)
    codes = [await signing_code(app, person, contract_id) for person in (guarantor, co_borrower)]

    signed = await asyncio.gather(*(sign_with_code(person, contract_id, code) for person, code in zip((guarantor, co_borrower), codes)))

    assert [r.status for r in signed] == [200, 200], [r.text for r in signed]
    assert (await Contract.get(id=contract_id)).status == "effective"
    assert await OutboxMessage.filter(topic="contracts.contract_effective").count() == 1
    kinds = await EvidenceRecord.filter(contract_id=contract_id).order_by("sequence").values_list("kind", flat=True)
    assert kinds.count("effective") == 1 and kinds[-1] == "effective" and kinds.count("signed") == 3
    assert (await borrower.get(contract_path(contract_id, "evidence"))).json["ok"] is True
