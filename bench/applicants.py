"""Bulk-made applicants for the lending benchmarks: real-name customers of one bank with the
consents a product needs, and a signed access token each (written to a file for wrk)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import jwt
from tortoise.transactions import in_transaction

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


async def create(count: int, *, bank_code: str, purposes: tuple[str, ...], secret_key: str, channel: str, seed: int = 7) -> list[str]:
    """Create ``count`` applicants; return an access token for each."""
    bank = await Bank.get(code=bank_code)
    tokens, now = [], clock.now()
    numbers = id_numbers(count, seed)
    for start in range(0, count, BATCH):
        chunk = numbers[start : start + BATCH]
        async with in_transaction():
            customers = [
                Customer(
                    name=f"压测{i}",
                    id_number=n,
                    id_number_hash=pii.lookup_hash(pii.ID_NUMBER, n),
                    phone=f"139{start + i:08d}",
                    phone_hash=pii.lookup_hash(pii.PHONE, f"139{start + i:08d}"),
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
