"""One world for the authorization matrix (tests/test_authz_matrix.py): two member banks of the
demo data, two customers of HZRCB, and one object of every kind owned by customer A or by HZRCB,
made through the service functions as the bank would make them.

The matrix then reaches for A's and HZRCB's objects as everyone who must not get them: customer
B, LSRCB staff of the same role, HZRCB staff of a role without the permission, a second partner
platform, and nobody at all.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from channels.models import PartnerApp, Referral
from channels.open_platform import SCOPES
from infra import clock
from lending_core.applications.models import Application
from lending_core.customers import service as customers
from lending_core.customers.models import BankRelationship
from lending_core.loans.models import LoanReceipt
from lending_core.org import service as org
from lending_core.org.models import Bank, Branch, Staff
from lending_core.products.models import Product, ProductVersion
from lending_core.products.definition import parse
from lending_core.products.service import CATALOGUE
from lending_core.risk import rulebook, signals
from lending_core.risk.models import DisposalTask, ListProposal
from lending_core.risk_lists import service as risk_lists
from marketing import incentives, quotas
from server.demo_data import DEMO_PARTNER_KEY
from tests.loans.lines import as_customer, person
from tests.marketing.campaign_support import scheduled_campaign, staff_actor
from tests.marketing.staff_story import declined_application
from tests.risk.book import real_loan

# A second partner platform with every scope: it must still see only the applicants it referred.
OTHER_PARTNER_KEY = "authz-other-platform"
OTHER_PARTNER_SECRET = "authz-other-secret"


@dataclass(frozen=True)
class World:
    """Ids of the objects the matrix reaches for (all A's or HZRCB's), and of the callers."""

    hz_bank: int
    ls_bank: int
    hz_branch: int
    hz_staff: int  # hz.manager: a staff member of HZRCB
    customer_a: int
    customer_b: int  # another customer of HZRCB
    customer_c: int  # a customer of LSRCB only
    application: int  # A's, contracted
    declined_application: int  # A's, rejected: what secondary marketing follows up
    contract: int
    loan: int
    consent: int
    campaign: int
    quota: int
    signal: int
    task: int
    proposal: int
    list_entry: int
    change: int  # a pending role change of HZRCB
    rule_change: int  # a pending rule-book version of HZRCB
    referral: int  # handed over by the demo partner platform
    local_product: str  # the code of HZRCB's own local product


async def build() -> World:
    """Build the world on top of the demo data (the ``demo`` fixture must have loaded it)."""
    hz = await Bank.get(code="HZRCB")
    ls = await Bank.get(code="LSRCB")
    manager = await Staff.get(username="hz.manager")
    loan, a, *_ = await real_loan(bank="HZRCB", name="甲客户")
    b = await person(bank="HZRCB", name="乙客户")
    c = await person(bank="LSRCB", name="丙客户")
    # A banks at hz.manager's branch: account managers follow up their own branch's declined applicants.
    await BankRelationship.filter(customer_id=a.id, bank_id=hz.id).update(home_branch_id=manager.branch_id)
    contract_application = await Application.get(customer_id=a.id)
    contract_id = (await LoanReceipt.get(id=loan.id)).contract_id
    consent = await customers.grant_consent(as_customer(a, hz.id), "credit_bureau")
    declined = await declined_application(a)

    signal = await signals.raise_signal(
        bank_id=hz.id, customer_id=a.id, loan_id=loan.id, product_code="SHUIYITONG", rule_code="RT_LARGE_OUTFLOW",
        category="realtime", severity="severe", source="realtime", facts={}, at=clock.now(),
    )
    task = await DisposalTask.get(signal_id=signal.id)
    proposal = await ListProposal.create(
        bank_id=hz.id, customer_id=a.id, signal_id=signal.id, level="greylist", policy="authz", reason="大额转出", open_key=f"authz:{a.id}",
    )
    risk = await staff_actor("hz.risk")
    entry = await risk_lists.add(risk, level="greylist", phone=a.phone, reason="多头借贷", bank_id=hz.id)
    _, rule_change = await rulebook.propose(
        risk, bank_id=hz.id, note="停用部分还款规则", changes=[{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]
    )
    change = await org.propose_roles(await staff_actor("hz.admin"), manager.id, ["account_manager", "reviewer"], "兼任审查")

    marketer = await staff_actor("hz.marketer")
    campaign = await scheduled_campaign(by="hz.marketer")
    await incentives.set_rule(marketer, campaign.id, per_disbursed_loan_fen=10_000, disbursed_bps=0, indirect_share_bps=10_000, cap_fen=None)
    quota = await quotas.create(
        marketer, staff_id=manager.id, branch_id=None, period=clock.business_date().strftime("%Y-%m"), targets={"referrals_target": 10}
    )

    partner = await PartnerApp.get(app_key=DEMO_PARTNER_KEY)
    referral = await Referral.create(partner=partner, customer_id=a.id, bank_id=hz.id, external_ref="authz-a", product_code="SHUIYITONG")
    await PartnerApp.create(
        app_key=OTHER_PARTNER_KEY, secret=OTHER_PARTNER_SECRET, name="另一合作平台", scopes=list(SCOPES), rate_limit_per_minute=10_000
    )
    local_product = await _local_product(hz)
    return World(
        hz_bank=hz.id,
        ls_bank=ls.id,
        hz_branch=manager.branch_id or (await Branch.filter(bank_id=hz.id).first()).id,
        hz_staff=manager.id,
        customer_a=a.id,
        customer_b=b.id,
        customer_c=c.id,
        application=contract_application.id,
        declined_application=declined.id,
        contract=contract_id,
        loan=loan.id,
        consent=consent.id,
        campaign=campaign.id,
        quota=quota.id,
        signal=signal.id,
        task=task.id,
        proposal=proposal.id,
        list_entry=entry.id,
        change=change.id,
        rule_change=rule_change.id,
        referral=referral.id,
        local_product=local_product,
    )


async def _local_product(bank: Bank) -> str:
    """HZRCB's own local product (as the county bank's 云溪E贷 is YXRCB's), published as version 1."""
    with (CATALOGUE / "YUNXIEDAI.toml").open("rb") as handle:
        raw = {**tomllib.load(handle), "code": "HEZHOUEDAI", "name": "河州E贷", "owner": bank.code}
    definition = parse(raw, source="authz world")
    product = await Product.create(code=definition.code, owner_bank=bank, family=definition.family, published_version=1)
    await ProductVersion.create(product=product, version=1, definition=raw, status="published", created_by="system:tests", published_at=clock.now())
    return product.code
