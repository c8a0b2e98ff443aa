"""The personal-data canary across every door (issue 10, item 3).

Distinctive people come in through the mini-program (login from a staff member's invite code,
WeChat phone binding, real name), the three bank apps (signed sessions), the open platform (a
partner's handover) and the staff console (a new staff member with a name and a phone). They
then go through the main flows: quote, apply, a manual review approved by staff, a contract
signed with SMS codes, a drawdown, a repayment, invite codes and scans, a red-packet grab, and
staff reading customers, applications, contracts, loans and referrals; the outbox is relayed
so SMS and WeChat messages go out.

Then every response, every log line, a full database dump (sqlite3's iterdump, or pg_dump),
the outbox payloads, every Redis key and value under the test's prefix, the SMS texts, the
WeChat messages and the notary's evidence files are searched for the clear values. Only masked
forms and keyed hashes may appear: the test lists every hit and fails on any.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from infra import clock, pii
from infra.identity_numbers import make_test_id_number
from infra.outbox import relay_once
from lending_core.customers.models import Customer as CustomerRecord
from lending_core.org.models import Bank
from marketing.models import PHONE_TOPUP, Payout
from server.demo_data import DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET, bank_app_key_id, bank_app_secret
from server.handlers import outbox_handlers
from tests.channels.signed_client import signed_request
from tests.contracts.flows import YANGGUANGEDAI, contract_made, contract_path, party, relay_contract_messages, signs
from tests.lending.flows import SHUIYITONG, Customer, Staff
from tests.marketing.campaign_support import scheduled_campaign
from tests.marketing.payout_support import campaign as live_campaign, due_reward
from tests.pii_canary_support import (
    Canary,
    ResponseRecorder,
    database_dump,
    every_log_line,
    without_the_test_clients_lines,
    notary_files,
    outbox_payloads,
    redis_contents,
    search,
    sms_texts,
    wechat_messages,
)
from tests.support import new_key


def _id(born: date, sequence: int) -> str:
    # Sequences pick the data sandbox's persona (integrations.data_sandbox.PERSONAS).
    return make_test_id_number("320102", born, sequence)


BORROWER = Canary("mini-program borrower", "司马霁月", _id(date(1981, 7, 23), 137), "13712345678")  # clean_salaried
GUARANTOR = Canary("guarantor", "上官砚秋", _id(date(1977, 2, 13), 741), "13712345671")  # home_owner
CO_BORROWER = Canary("co-borrower", "东方沐歌", _id(date(1984, 9, 5), 157), "13712345672")  # clean_salaried
MOBILE_BANK = Canary("mobile-bank customer", "皇甫清漪", _id(date(1986, 1, 30), 991), "13712345673")  # unavailable: manual review
ENTERPRISE_BANK = Canary("enterprise-bank customer", "令狐松涛", _id(date(1975, 6, 17), 823), "13712345674")  # small_firm
DIRECT_BANK = Canary("direct-bank customer", "闻人语嫣", _id(date(1990, 12, 2), 411), "13712345675")  # court_enforcement: declined
OPEN_PLATFORM = Canary("open-platform applicant", "端木映雪", _id(date(1988, 3, 14), 219), "13712345676")  # thin_file
STAFF = Canary("staff member", "澹台星河", None, "13712345677")
CANARIES = (BORROWER, GUARANTOR, CO_BORROWER, MOBILE_BANK, ENTERPRISE_BANK, DIRECT_BANK, OPEN_PLATFORM, STAFF)
BANK_APPS = {"mobile_bank": MOBILE_BANK, "enterprise_bank": ENTERPRISE_BANK, "direct_bank": DIRECT_BANK}
STAFF_USERNAME = "hz.canary.staff"
STAFF_PASSWORD = "Canary-pass-2026!"
LOGIN = "/api/v1/channels/wechat/login"


class PlantedCustomer(Customer):
    """A mini-program customer who arrives through an invite code and binds the phone WeChat vouches for."""

    async def arrive(self, bank: str, *, scene: str | None = None) -> None:
        body = {"code": f"canary{uuid.uuid4().hex[:12]}.1", "bank_id": (await Bank.get(code=bank)).id,
                "device_id": f"dev-{uuid.uuid4().hex}", **({"scene": scene} if scene else {})}
        _, response = await self.client.post(LOGIN, json=body)
        assert response.status == 200, response.text
        self._signed_in(response.json)
        bound = await self.post("/api/v1/channels/wechat/phone", {"code": f"{self.phone}.{uuid.uuid4().hex[:6]}"})
        assert bound.status == 200, bound.text


def planted(canary: Canary, client) -> PlantedCustomer:
    return PlantedCustomer(client, name=canary.name, id_number=canary.id_number, phone=canary.phone)


def ok(response, status: int = 200):
    assert response.status == status, response.text
    return response.json


async def staff_arrives(client, staff: Staff) -> dict:
    """A bank admin creates the canary staff member, who signs in and takes an invite code."""
    created = ok(await staff.post("hz.admin", "/api/v1/admin/staff", {
        "username": STAFF_USERNAME, "name": STAFF.name, "phone": STAFF.phone, "roles": ["account_manager"], "password": STAFF_PASSWORD,
    }), 201)
    _, login = await client.post("/api/v1/staff/login", json={"username": STAFF_USERNAME, "password": STAFF_PASSWORD})
    staff._tokens[STAFF_USERNAME] = ok(login)["access_token"]
    ok(await staff.get(STAFF_USERNAME, "/api/v1/staff/me"))
    code = ok(await staff.get(STAFF_USERNAME, "/api/v1/admin/invite-code"))["code"]
    _, scanned = await client.post(f"/api/v1/invite-codes/{code}/scans", json={"channel": "wxacode", "device_id": f"dev-{uuid.uuid4().hex}"})
    ok(scanned, 201)
    return {"id": created["id"], "invite_code": code}


async def mini_program_loan(app, client, staff_code: str) -> dict:
    """Quote, apply, contract with a guarantor and a co-borrower, sign by SMS, draw, repay; take
    an invite code, grab a red packet and earn phone credit."""
    borrower = planted(BORROWER, client)
    await borrower.arrive("HZRCB", scene=staff_code)
    await borrower.verify_real_name()
    await borrower.consent(*YANGGUANGEDAI.consents)
    ok(await borrower.quote("YANGGUANGEDAI", amount_yuan=100_000))
    application = await borrower.applied("YANGGUANGEDAI", amount_yuan=100_000)
    assert application["status"] == "approved", application
    my_code = ok(await borrower.get("/api/v1/invite-code"))["code"]

    guarantor = planted(GUARANTOR, client)
    await guarantor.arrive("HZRCB", scene=my_code)
    await guarantor.verify_real_name()
    ok(await borrower.get("/api/v1/referrals"))

    co_borrower = planted(CO_BORROWER, client)
    contract = await contract_made(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])
    await relay_contract_messages(app)  # the co-borrower is invited by SMS
    await co_borrower.arrive("HZRCB")
    await co_borrower.verify_real_name()
    for person in (borrower, guarantor, co_borrower):
        signed = await signs(app, person, contract["id"])
    assert signed["status"] == "effective", signed

    ok(await borrower.post(contract_path(contract["id"], "drawdowns", "preview"), {"amount_fen": 1_000_000}))
    loan = ok(await borrower.post(contract_path(contract["id"], "drawdowns"), {"amount_fen": 1_000_000}, key=new_key()), 201)
    payoff = ok(await borrower.get(f"/api/v1/loans/{loan['id']}/payoff-quote"))["total_fen"]
    ok(await borrower.post(f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": payoff}, key=new_key()), 201)
    for path in ("/api/v1/me", "/api/v1/applications", "/api/v1/contracts", f"/api/v1/contracts/{contract['id']}/evidence", "/api/v1/loans"):
        ok(await borrower.get(path))
    ok(await guarantor.get("/api/v1/loans"))

    campaign = await scheduled_campaign()
    desk = getattr(app.ctx, "grab_desk", None)
    if desk is not None:
        desk.forget()  # it may hold a campaign list from before this one was made
    _, grabbed = await client.post(f"/api/v1/campaigns/{campaign.id}/red-packets/grab", headers=borrower.headers())
    ok(grabbed, 201)
    ok(await borrower.get("/api/v1/me/rewards"))
    # Phone credit is paid to the phone itself: the top-up is queued here and paid by the relay.
    await due_reward(await live_campaign("phone_credit"), await CustomerRecord.get(id=borrower.customer_id), 1000, kind="phone_credit")
    return {"application": application["id"], "contract": contract["id"], "loan": loan["id"], "customer": borrower.customer_id,
            "token": borrower.token}


def bank_app_person(canary: Canary, **changes) -> dict:
    return {"bank_code": "HZRCB", "customer_no": f"C{canary.phone[-6:]}", "name": canary.name,
            "id_number": canary.id_number, "phone": canary.phone, **changes}


async def from_bank_app(client, app_channel: str, body: dict, *, path_channel: str | None = None):
    """A request signed with HZRCB's key for ``app_channel`` (sent to ``path_channel``'s door)."""
    path = f"/api/v1/channels/{path_channel or app_channel}/sessions"
    return await signed_request(client, bank_app_key_id("HZRCB", app_channel), bank_app_secret("HZRCB", app_channel), "POST", path, body)


async def from_partner(client, method: str, path: str, body: dict | None = None, *, secret: str = DEMO_PARTNER_SECRET):
    return await signed_request(client, DEMO_PARTNER_KEY, secret, method, path, body)


def handover(canary: Canary, external_ref: str, **changes) -> dict:
    return {"external_ref": external_ref, "bank_code": "HZRCB", "name": canary.name, "id_number": canary.id_number,
            "phone": canary.phone, "consents": ["personal_information", "credit_bureau"], "product_code": "AGRI-01", **changes}


async def bank_app_sessions(client) -> dict[str, dict]:
    """Each member-bank app opens a session for its canary; the enterprise one brings a firm."""
    sessions = {}
    for channel, canary in BANK_APPS.items():
        body = bank_app_person(canary)
        if channel == "enterprise_bank":
            body["firm"] = {"name": "河州市松涛农机合作社", "unified_social_credit_code": "93330102MA2B3C4D5E",
                            "legal_representative": canary.name}
        sessions[channel] = ok(await from_bank_app(client, channel, body), 201)
    return sessions


async def manual_review_approved(client, staff: Staff, session: dict) -> int:
    """The mobile-bank customer applies; their sources are down, so a reviewer decides."""
    customer = Customer(client, name=MOBILE_BANK.name, id_number=MOBILE_BANK.id_number, phone=MOBILE_BANK.phone)
    customer._signed_in(session)
    await customer.consent(*SHUIYITONG.consents)
    ok(await customer.quote())
    application = await customer.applied()
    assert application["status"] == "manual_review", application
    # Staff type what they checked: an ID or phone in a note must not be kept or shown in clear.
    note = f"电话核实收入，客户手机{MOBILE_BANK.phone}，身份证{MOBILE_BANK.id_number}"
    ok(await staff.review("hz.senior", application["id"], "approve", note=note, limit_yuan=50_000))
    ok(await customer.get(f"/api/v1/applications/{application['id']}"))
    return application["id"]


async def declined_and_followed_up(client, staff: Staff, session: dict) -> int:
    """The direct-bank customer is declined; an account manager calls them back, notes it and
    re-invites them by SMS to another product; a risk officer lists the enterprise-bank
    customer by ID number and phone."""
    customer = Customer(client, name=DIRECT_BANK.name, id_number=DIRECT_BANK.id_number, phone=DIRECT_BANK.phone)
    customer._signed_in(session)
    await customer.consent(*SHUIYITONG.consents)
    application = await customer.applied()
    assert application["status"] == "rejected", application
    follow_ups = f"/api/v1/admin/secondary-marketing/applicants/{application['id']}/follow-ups"
    ok(await staff.post("hz.admin", follow_ups, {
        "note": f"已致电{DIRECT_BANK.phone}，客户报身份证{DIRECT_BANK.id_number}，下月再联系", "outcome": "interested"}), 201)
    ok(await staff.get("hz.admin", follow_ups))
    applicant = f"/api/v1/admin/secondary-marketing/applicants/{application['id']}"
    offer = ok(await staff.get("hz.admin", f"{applicant}/reinvitation-offers"))["items"][0]
    ok(await staff.post("hz.admin", f"{applicant}/reinvitations", {"product_code": offer["code"], "channel": "sms"}), 201)
    ok(await staff.post("hz.risk", "/api/v1/admin/risk-lists", {
        "level": "greylist", "id_number": ENTERPRISE_BANK.id_number, "phone": ENTERPRISE_BANK.phone,
        "reason": f"涉诉，联系电话{ENTERPRISE_BANK.phone}"}), 201)
    ok(await staff.get("hz.risk", "/api/v1/admin/risk-lists"))
    return application["id"]


async def open_platform_handover(client) -> None:
    handed = ok(await from_partner(client, "POST", "/api/v1/open/applicants", handover(OPEN_PLATFORM, "CANARY-0001")), 201)
    ok(await from_partner(client, "GET", "/api/v1/open/referrals"))
    ok(await from_partner(client, "GET", f"/api/v1/open/referrals/{handed['id']}"))


async def staff_look(staff: Staff, story: dict) -> None:
    """Staff read what the customers did: every screen that shows a person."""
    this_month = f"{clock.now().astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m}"
    reads = {
        "hz.manager": ["/api/v1/admin/customers", f"/api/v1/admin/customers/{story['customer']}",
                       f"/api/v1/admin/contracts/{story['contract']}", f"/api/v1/admin/contracts/{story['contract']}/evidence",
                       "/api/v1/admin/loans", f"/api/v1/admin/loans/{story['loan']}", "/api/v1/admin/referrals/summary",
                       "/api/v1/admin/channel-stats", "/api/v1/admin/secondary-marketing/applicants"],
        "hz.reviewer": [f"/api/v1/admin/applications/{story['application']}", f"/api/v1/admin/applications/{story['reviewed']}",
                        f"/api/v1/admin/applications/{story['declined']}",
                        "/api/v1/admin/review-queue"],
        "hz.admin": ["/api/v1/admin/staff", f"/api/v1/admin/staff/{story['staff']}", "/api/v1/admin/audit",
                     f"/api/v1/admin/leaderboard?period={this_month}", "/api/v1/admin/secondary-marketing"],
        "hz.marketer": ["/api/v1/admin/marketing/abuse-report"],
        STAFF_USERNAME: ["/api/v1/admin/customers", "/api/v1/admin/referrals/summary"],
    }
    for username, paths in reads.items():
        for path in paths:
            response = await staff.get(username, path)
            assert response.status == 200, f"{username} GET {path}: {response.text}"


async def refusals(client, borrower_token: str) -> None:
    """Bad input carrying the planted values through each door: a refusal must not echo them,
    in its body or in the log line it leaves."""
    me = {"Authorization": f"Bearer {borrower_token}"}
    wrong_check = OPEN_PLATFORM.id_number[:17] + ("1" if OPEN_PLATFORM.id_number[17] != "1" else "2")
    someone_else = {"name": GUARANTOR.name, "id_number": GUARANTOR.id_number, "phone": GUARANTOR.phone}
    sent = [
        await client.post("/api/v1/me/real-name", headers=me, json={"name": BORROWER.name, "id_number": BORROWER.phone, "phone": BORROWER.id_number}),
        await client.post("/api/v1/me/real-name", headers=me, json=someone_else),
        await client.post("/api/v1/channels/wechat/phone", headers=me, json={"code": f"{BORROWER.phone}.{BORROWER.name}", "iv": BORROWER.id_number}),
        await client.post(f"/api/v1/admin/customers/{BORROWER.id_number}", json={"name": BORROWER.name}),
        await client.get(f"/api/v1/applications?phone={BORROWER.phone}&name={BORROWER.name}", headers=me),
    ]
    refused = [
        await from_partner(client, "POST", "/api/v1/open/applicants", handover(
            OPEN_PLATFORM, "CANARY-0002", id_number=wrong_check, phone=OPEN_PLATFORM.id_number, product_code=OPEN_PLATFORM.phone)),
        await from_partner(client, "POST", "/api/v1/open/applicants", handover(OPEN_PLATFORM, "CANARY-0003"), secret="not-the-secret"),
        await from_bank_app(client, "mobile_bank", bank_app_person(DIRECT_BANK), path_channel="direct_bank"),
        await from_bank_app(client, "mobile_bank", bank_app_person(
            MOBILE_BANK, bank_code="LSRCB", customer_no=MOBILE_BANK.phone, id_number=MOBILE_BANK.phone, phone=MOBILE_BANK.id_number)),
    ]
    for response in [response for _, response in sent] + refused:
        assert 400 <= response.status < 500, response.text


async def relay_everything(app) -> None:
    """Run the outbox relay as the worker would, until nothing more is ready."""
    handlers = outbox_handlers(app.ctx.settings, app.ctx.providers)
    for _ in range(5):
        if not await relay_once(handlers):
            break


async def run_every_door(app, client) -> dict:
    staff = Staff(client)
    arrived = await staff_arrives(client, staff)
    story = await mini_program_loan(app, client, arrived["invite_code"])
    sessions = await bank_app_sessions(client)
    story |= {"staff": arrived["id"], "reviewed": await manual_review_approved(client, staff, sessions["mobile_bank"]),
              "declined": await declined_and_followed_up(client, staff, sessions["direct_bank"])}
    await open_platform_handover(client)
    await refusals(client, story["token"])
    await relay_everything(app)
    await staff_look(staff, story)
    return story


@pytest.mark.usefixtures("demo")
async def test_planted_people_appear_nowhere_in_clear(app, client, settings, redis, fake_wechat, monkeypatch):
    responses = ResponseRecorder()
    responses.wrap(client, monkeypatch)
    with every_log_line() as log_stream:
        await run_every_door(app, client)
        logging.getLogger("tests.canary").warning("a careless line about %s, phone %s", BORROWER.id_number, BORROWER.phone)
    logs = without_the_test_clients_lines(log_stream.getvalue())
    places = {
        **responses.bodies,
        "logs": logs,
        "database dump": database_dump(settings),
        **await outbox_payloads(),
        **await redis_contents(redis, settings.redis_key_prefix),
        **sms_texts(app.ctx.providers.sms, CANARIES),
        **await wechat_messages(fake_wechat),
        **notary_files(settings.notary_dir),
    }

    # We looked where the people are: their masked forms are there, and so is what we search.
    assert pii.mask_phone(BORROWER.phone) in logs and pii.mask_id_number(BORROWER.id_number) in logs  # the careless line
    assert '"path":"/api/v1/channels/wechat/login"' in logs
    every_response = "\n".join(responses.bodies.values())
    for canary in CANARIES[:-1]:
        assert pii.mask_name(canary.name) in every_response, f"no screen showed the {canary.role}"
    assert pii.mask_name(STAFF.name) in every_response and pii.mask_phone(STAFF.phone) in every_response
    assert "INSERT INTO" in places["database dump"] or "COPY " in places["database dump"]
    assert any(place.startswith("outbox") for place in places), "the flows queued no outbox message"
    assert any(place.startswith("redis") for place in places), "the flows left nothing in Redis"
    assert "验证码" in places[f"SMS to the {BORROWER.role}"]
    assert any(place.startswith("notary file") for place in places), "no evidence was notarised"
    assert await Payout.filter(channel=PHONE_TOPUP).exists(), "the relay paid no phone credit"

    hits = search(places, CANARIES)
    assert not hits, f"{len(hits)} clear values found:\n" + "\n".join(map(str, hits))


def test_the_search_sees_every_clear_spelling_and_no_masked_form():
    text = " ".join([
        BORROWER.id_number.lower(), "137 1234 5671", '"\\u4e0a\\u5b98\\u781a\\u79cb"', "%E4%B8%9C%E6%96%B9%E6%B2%90%E6%AD%8C",
        pii.mask_phone(MOBILE_BANK.phone), pii.mask_name(MOBILE_BANK.name), pii.mask_id_number(MOBILE_BANK.id_number),
    ])
    found = {hit.value for hit in search({"text": text}, CANARIES)}
    assert found == {"mini-program borrower ID number", "guarantor phone", "guarantor name", "co-borrower name"}
