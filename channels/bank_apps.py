"""The member banks' own apps — personal mobile banking, enterprise mobile banking, the direct
bank — call us server to server. Each request is signed with the key of one (channel, bank); the
body asserts the person as the bank knows them, and we answer with a customer session scoped to
that channel and bank."""

from __future__ import annotations

from dataclasses import dataclass

from channels import customer_sessions
from channels.models import ChannelCredential
from channels.sessions import TokenPair, TokenPolicy
from channels.signing import SignatureInvalid, security_log
from infra.actors import Actor
from infra.errors import InvalidInput, PermissionDenied
from lending_core.channel_names import ENTERPRISE_BANK
from lending_core.customers import service as customers
from lending_core.customers.models import Customer
from lending_core.customers.service import FirmAssertion
from lending_core.org.models import Bank


class ChannelKeyMismatch(SignatureInvalid):
    """This key belongs to another channel: each app signs with its own."""


@dataclass(frozen=True)
class BankApp:
    bank: Bank
    channel: str
    key_id: str


@dataclass(frozen=True)
class BankSession:
    customer: Customer
    tokens: TokenPair
    is_new: bool


async def load_credential(key_id: str) -> tuple[str, BankApp] | None:
    credential = await ChannelCredential.filter(key_id=key_id, is_active=True).select_related("bank").first()
    if credential is None or not credential.bank.is_active:
        return None
    return credential.secret, BankApp(bank=credential.bank, channel=credential.channel, key_id=key_id)


class FirmRequired(InvalidInput):
    """Enterprise banking sessions carry the firm (name, unified social credit code, legal representative)."""


class BankKeyMismatch(PermissionDenied):
    """This key belongs to another member bank: a bank's app signs only for its own customers."""


def check_channel(app: BankApp, channel: str) -> None:
    """The key must be this channel's: each app signs with its own."""
    if app.channel != channel:
        security_log.warning("channel key used on another channel", extra={"key_id": app.key_id, "path_channel": channel})
        raise ChannelKeyMismatch()


def check_bank(app: BankApp, bank_code: str) -> None:
    """The key must be the one of the bank the request speaks for."""
    if app.bank.code != bank_code:
        security_log.warning("channel key used for another bank", extra={"key_id": app.key_id, "bank_code": bank_code})
        raise BankKeyMismatch()


async def open_session(
    app: BankApp,
    *,
    customer_no: str,
    name: str,
    id_number: str,
    phone: str,
    firm: FirmAssertion | None,
    policy: TokenPolicy,
) -> BankSession:
    if app.channel == ENTERPRISE_BANK and firm is None:
        raise FirmRequired()
    actor = Actor(kind="system", id=f"bank-app:{app.key_id}", bank_id=app.bank.id, channel=app.channel)
    arrival = await customers.arrive_from_bank(
        actor, bank=app.bank, channel=app.channel, customer_no=customer_no, name=name, id_number=id_number, phone=phone, firm=firm
    )
    tokens = await customer_sessions.sign_in(arrival.customer, bank_id=app.bank.id, channel=app.channel, policy=policy)
    return BankSession(arrival.customer, tokens, arrival.is_new)
