"""Bulk-made applicants for the lending benchmarks: real-name customers of one bank with the
consents a product needs, and a signed access token each (written to a file for wrk)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import jwt
from tortoise.transactions import in_transaction

from channels.models import WeChatAccount
from infra import clock, pii
from infra.identity_numbers import make_test_id_number
from lending_core.customers.consents import CURRENT as CONSENT_TEXTS
from lending_core.customers.models import BankRelationship, Consent, Customer, CustomerIdentity
from lending_core.org.models import Bank

BATCH = 1000
# Small-firm owners (sequences 801-849 in the sandbox): the approving path does the most work.
SEQUENCES = range(801, 850)


def id_numbers(count: int, seed: int = 7) -> list[str]:
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        birth = date(1971, 1, 1) + timedelta(days=rng.randrange(0, 365 * 30))
        number = make_test_id_number("320102", birth, rng.choice(SEQUENCES))
        if number not in seen:
            seen.add(number)
            out.append(number)
    return out


async def _unused(numbers: list[str], count: int) -> list[str]:
    """The first ``count`` of ``numbers`` no customer has yet: several sets of applicants (the
    grab's and the lending runs') share one database."""
    unused = []
    for start in range(0, len(numbers), BATCH):
        chunk = {pii.lookup_hash(pii.ID_NUMBER, n): n for n in numbers[start : start + BATCH]}
        taken = set(await Customer.filter(id_number_hash__in=list(chunk)).values_list("id_number_hash", flat=True))
        unused += [n for h, n in chunk.items() if h not in taken]
        if len(unused) >= count:
            return unused[:count]
    raise ValueError(f"fewer than {count} unused test ID numbers: use another seed")


def _phone(id_number: str) -> str:
    """A phone of one's own, from the ID number's date of birth and sequence."""
    return f"139{id_number[6:14][2:]}{id_number[14:17][1:]}"


async def create(
    count: int, *, bank_code: str, purposes: tuple[str, ...], secret_key: str, channel: str, seed: int = 7, wechat_appid: str | None = None
) -> list[str]:
    """Create ``count`` applicants; return an access token for each. With ``wechat_appid`` each
    also has a mini-program account (an openid), which a red-packet payout needs."""
    bank = await Bank.get(code=bank_code)
    tokens, now = [], clock.now()
    numbers = await _unused(id_numbers(count * 2, seed), count)
    for start in range(0, count, BATCH):
        chunk = numbers[start : start + BATCH]
        async with in_transaction():
            customers = [
                Customer(
                    name=f"压测{i}",
                    id_number=n,
                    id_number_hash=pii.lookup_hash(pii.ID_NUMBER, n),
                    phone=_phone(n),
                    phone_hash=pii.lookup_hash(pii.PHONE, _phone(n)),
                    real_name_verified_at=now,
                )
                for i, n in enumerate(chunk)
            ]
            await Customer.bulk_create(customers)
            created = await Customer.filter(id_number_hash__in=[c.id_number_hash for c in customers]).values_list("id", "id_number_hash")
            ids = [customer_id for customer_id, _ in created]
            await CustomerIdentity.bulk_create(
                [CustomerIdentity(customer_id=cid, kind="id_number", issuer="cn", value_hash=h) for cid, h in created]
            )
            if wechat_appid:
                await WeChatAccount.bulk_create([
                    WeChatAccount(customer_id=cid, appid=wechat_appid, openid=f"obench{cid}", openid_hash=pii.lookup_hash("wechat_openid", f"obench{cid}"),
                                  session_key="c2Vzc2lvbg==")
                    for cid in ids
                ])
            await BankRelationship.bulk_create([BankRelationship(customer_id=cid, bank_id=bank.id, first_channel=channel) for cid in ids])
            await Consent.bulk_create(
                [
                    Consent(
                        customer_id=cid,
                        bank_id=bank.id,
                        purpose=p,
                        text_version=CONSENT_TEXTS[p].version,
                        text=CONSENT_TEXTS[p].text,
                        text_sha256=CONSENT_TEXTS[p].sha256,
                        channel=channel,
                        granted_at=now,
                    )
                    for cid in ids
                    for p in purposes
                ]
            )
        expiry = int((now + timedelta(hours=2)).timestamp())
        tokens += [
            jwt.encode({"aud": "customer", "sub": str(cid), "bank": bank.id, "chn": channel, "exp": expiry}, secret_key, algorithm="HS256")
            for cid in ids
        ]
    return tokens


def made_in_database(settings, count: int, *, product_code: str = "SHUIYITONG", seed: int = 7) -> list[str]:
    """``create`` on ``settings``' database, outside any running loop: ``count`` applicants of
    HZRCB through the mini-program with the consents ``product_code`` needs; their tokens."""
    import asyncio
    from pathlib import Path

    from lending_core.products.service import read_catalogue_file
    from bench.run import app_stores

    product = read_catalogue_file(Path(__file__).resolve().parent.parent / "lending_core" / "products" / "catalogue" / f"{product_code}.toml")

    async def make() -> list[str]:
        async with app_stores(settings):
            return await create(count, bank_code="HZRCB", purposes=product.consents, secret_key=settings.secret_key, channel="wechat_miniprogram", seed=seed)

    return asyncio.run(make())
