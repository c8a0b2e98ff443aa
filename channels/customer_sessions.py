"""Customer sign-in through every door ends here: one customer record, one token pair scoped to
the channel and the member bank the customer is dealing with."""

from __future__ import annotations

from channels import sessions
from channels.sessions import TokenPair, TokenPolicy
from infra.actors import Actor
from lending_core.customers.models import Customer
from lending_core.customers.service import current


def customer_actor(customer: Customer, *, bank_id: int | None, channel: str) -> Actor:
    return Actor(kind="customer", id=customer.id, bank_id=bank_id, channel=channel)


async def sign_in(customer: Customer, *, bank_id: int | None, channel: str, policy: TokenPolicy) -> TokenPair:
    return await sessions.start_session(customer_actor(customer, bank_id=bank_id, channel=channel), channel=channel, policy=policy)


async def reload_customer_actor(customer_id: int, bank_id: int | None) -> Actor:
    """For refresh: the survivor if the record was merged since, keeping the session's bank."""
    customer = await current(Actor(kind="customer", id=customer_id))
    return Actor(kind="customer", id=customer.id, bank_id=bank_id)
