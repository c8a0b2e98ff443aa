"""Demo data: the association, three member banks (one a county bank), two branches each, staff
for every role and a few customers. Loading twice changes nothing: rows are found by code first.

Every demo staff member signs in with DEMO_PASSWORD. Refused in production.
"""

from __future__ import annotations

from datetime import date

from tortoise.transactions import in_transaction

from infra import audit, pii
from infra.actors import system
from channels.models import ChannelCredential, PartnerApp
from channels.open_platform import SCOPES
from infra.identity_numbers import make_test_id_number
from lending_core.channel_names import BANK_APP_CHANNELS
from lending_core.customers import service as customers
from lending_core.products import service as products
from lending_core.org import passwords
from lending_core.org.models import Association, Bank, Branch, Staff
from lending_core.org.roles import Role

DEMO_PASSWORD = "Demo-pass-2026"
# Bank apps sign with key "<bank code>-<channel>" and secret "demo-<channel>-<bank code>"; the
# demo partner platform with app key "gov-sme-platform" and secret DEMO_PARTNER_SECRET.
DEMO_PARTNER_KEY = "gov-sme-platform"
DEMO_PARTNER_SECRET = "demo-partner-secret"

ASSOCIATION = ("DEMO-RCU", "示范省农村信用社联合社")

BANKS = [
    # code, name, city, county, branches, username prefix
    ("HZRCB", "河州农商银行", "河州市", None, [("HZ01", "河州营业部"), ("HZ02", "河州城东支行")], "hz"),
    ("LSRCB", "蓝山农商银行", "蓝山市", None, [("LS01", "蓝山营业部"), ("LS02", "蓝山开发区支行")], "ls"),
    ("YXRCB", "云溪县农商银行", "河州市", "云溪县", [("YX01", "云溪营业部"), ("YX02", "云溪桥头支行")], "yx"),
]

BANK_STAFF = [
    ("manager", "客户经理", [Role.ACCOUNT_MANAGER]),
    ("marketer", "营销专员", [Role.MARKETER]),
    ("reviewer", "审查员", [Role.REVIEWER]),
    ("senior", "审批人", [Role.SENIOR_REVIEWER]),
    ("risk", "风险经理", [Role.RISK_OFFICER]),
    ("admin", "管理员甲", [Role.BANK_ADMIN]),
    ("admin2", "管理员乙", [Role.BANK_ADMIN]),
]

ASSOCIATION_STAFF = [
    ("assoc.product", "产品经理", [Role.ASSOCIATION_PRODUCT_MANAGER]),
    ("assoc.product2", "产品复核", [Role.ASSOCIATION_PRODUCT_MANAGER]),
    ("assoc.admin", "联社管理员", [Role.ASSOCIATION_ADMIN]),
    ("assoc.admin2", "联社复核员", [Role.ASSOCIATION_ADMIN]),
]

# name, ID number, phone, bank code, already a customer of that bank
CUSTOMERS = [
    ("王建军", make_test_id_number("320102", date(1985, 3, 12), 101), "13800000001", "HZRCB", True),
    ("李秀英", make_test_id_number("320105", date(1992, 7, 8), 202), "13800000002", "LSRCB", False),
]


async def load() -> dict[str, int]:
    """Create what is missing; return how many rows of each kind were created."""
    created = {"banks": 0, "branches": 0, "staff": 0, "customers": 0, "channel_keys": 0, "partner_apps": 0}
    actor = system("demo-data")
    password_hash = passwords.hash_password(DEMO_PASSWORD)
    async with in_transaction():
        association, _ = await Association.get_or_create(code=ASSOCIATION[0], defaults={"name": ASSOCIATION[1]})
        for username, name, roles in ASSOCIATION_STAFF:
            created["staff"] += await _staff(actor, None, None, username, name, roles, password_hash)
        for code, name, city, county, branches, prefix in BANKS:
            bank, new = await Bank.get_or_create(
                code=code, defaults={"association": association, "name": name, "city": city, "county": county}
            )
            created["banks"] += new
            first_branch = None
            for branch_code, branch_name in branches:
                branch, new = await Branch.get_or_create(
                    bank=bank, code=branch_code, defaults={"name": branch_name, "city": city, "county": county}
                )
                created["branches"] += new
                first_branch = first_branch or branch
            for suffix, staff_name, roles in BANK_STAFF:
                created["staff"] += await _staff(
                    actor, bank, first_branch, f"{prefix}.{suffix}", f"{name[:2]}{staff_name}", roles, password_hash
                )
        for bank in await Bank.all():
            for channel in BANK_APP_CHANNELS:
                _, new = await ChannelCredential.get_or_create(
                    key_id=bank_app_key_id(bank.code, channel),
                    defaults={"bank": bank, "channel": channel, "secret": bank_app_secret(bank.code, channel)},
                )
                created["channel_keys"] += new
        _, new = await PartnerApp.get_or_create(
            app_key=DEMO_PARTNER_KEY,
            defaults={
                "name": "省中小企业融资服务平台 (demo)",
                "secret": DEMO_PARTNER_SECRET,
                "scopes": list(SCOPES),
                "rate_limit_per_minute": 120,
            },
        )
        created["partner_apps"] += new
    created["products"] = await products.import_catalogue(actor)
    await products.seed_lpr()
    for name, id_number, phone, bank_code, is_bank_customer in CUSTOMERS:
        if await customers.find_by_id_number(id_number) is None:
            bank = await Bank.get(code=bank_code)
            await customers.register(
                actor, name=name, id_number=id_number, phone=phone, bank_id=bank.id, channel="branch", is_bank_customer=is_bank_customer
            )
            created["customers"] += 1
    return created


def bank_app_key_id(bank_code: str, channel: str) -> str:
    return f"{bank_code}-{channel}"


def bank_app_secret(bank_code: str, channel: str) -> str:
    return f"demo-{channel}-{bank_code}"


async def _staff(actor, bank, branch, username, name, roles, password_hash) -> int:
    if await Staff.filter(username=username).exists():
        return 0
    staff = await Staff.create(
        bank=bank,
        branch=branch,
        username=username,
        name=name,
        phone=None,
        roles=sorted(r.value for r in roles),
        password_hash=password_hash,
    )
    await audit.record(
        actor, "staff.create", "staff", staff.id, bank_id=staff.bank_id, after={"username": username, "name": pii.mask_name(name)}
    )
    return 1
