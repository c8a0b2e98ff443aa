"""Lists from signals (M15): the list policy (``list_policy.toml``) says which newly opened
signals put their customer on a black or grey list of the signal's bank, and whether a risk
officer must confirm it first. Every match is recorded as a ``ListProposal``: confirmed ones
(and those the policy applies at once) become entries through the lists' own service
(``risk_lists.service.add``), so screening, masking and audit are the lists' as for manual
entries. One proposal per customer, bank and level waits at a time, and none is made when the
customer already has an active entry of that level at the bank.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock, pii
from infra.actors import Actor, system
from lending_core import access
from lending_core.customers.models import Customer
from lending_core.ledger import bulk
from lending_core.risk import realtime
from lending_core.risk.errors import ProposalDecided, ProposalNotFound
from lending_core.risk.expression import parse_condition
from lending_core.risk.models import SEVERITIES, ListProposal, WarningSignal
from lending_core.risk_lists import service as risk_lists
from lending_core.risk_lists.errors import DuplicateListEntry
from lending_core.risk_lists.models import ListEntry

POLICY_FILE = Path(__file__).parent / "list_policy.toml"
PROPOSED, APPLIED, REJECTED = "proposed", "applied", "rejected"
ACTOR = system("risk-lists")
READ, MANAGE = "risk.read", "risk.manage"


@dataclass(frozen=True)
class Policy:
    code: str
    level: str
    rules: frozenset[str] | None  # None: any rule
    min_severity: str
    confirm: bool
    reason: str
    condition_text: str | None
    condition: Callable[[Mapping[str, Any]], bool] | None

    def matches(self, rule_code: str, severity: str, facts: Mapping[str, Any]) -> bool:
        if self.rules is not None and rule_code not in self.rules:
            return False
        if SEVERITIES.index(severity) < SEVERITIES.index(self.min_severity):
            return False
        return self.condition is None or self.condition(nested(facts))


def nested(facts: Mapping[str, Any]) -> dict:
    """A signal's facts (field path → value) as the nested snapshot the rule language reads."""
    loan: dict = {}
    for path, value in facts.items():
        group, _, name = path.rpartition(".")
        if group:
            loan.setdefault(group, {})[name] = value
        else:
            loan[name] = value
    return loan


def load_policies(path: Path = POLICY_FILE) -> tuple[Policy, ...]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    policies = []
    for entry in raw.get("policies", []):
        if entry["level"] not in risk_lists.LEVELS or entry["min_severity"] not in SEVERITIES:
            raise ValueError(f"list policy {entry.get('code')}: unknown level or severity")
        text = entry.get("condition")
        rules = entry.get("rules", "any")
        policies.append(Policy(
            code=entry["code"], level=entry["level"], rules=None if rules == "any" else frozenset(rules),
            min_severity=entry["min_severity"], confirm=bool(entry["confirm"]), reason=entry["reason"], condition_text=text,
            condition=realtime.compile_condition(parse_condition(text)) if text else None,
        ))
    return tuple(policies)


@lru_cache(maxsize=1)
def policies() -> tuple[Policy, ...]:
    return load_policies()


def proposal_key(bank_id: int, customer_id: int, level: str) -> str:
    return f"{bank_id}:{customer_id}:{level}"


async def propose_for_signals(signals: Iterable[WarningSignal], *, at: datetime) -> int:
    """Record the proposals the policy makes for newly opened signals (set-based); those the
    policy applies at once are left ``proposed`` with ``confirm`` off and applied by
    ``apply_automatic`` (after the batch, or straight away for a single signal). Returns how
    many proposals were made. Runs in the caller's transaction."""
    made: list[tuple] = []
    seen: set[str] = set()
    now = clock.now()
    for signal in signals:
        for policy in policies():
            if not policy.matches(signal.rule_code, signal.severity, signal.facts or {}):
                continue
            key = proposal_key(signal.bank_id, signal.customer_id, policy.level)
            if key in seen:
                continue
            seen.add(key)
            made.append((signal.bank_id, signal.customer_id, signal.id, policy.level, policy.code, policy.reason, PROPOSED, key, now))
    # A proposal already waiting holds the open key: its duplicate is skipped by the unique index.
    # Bulk SQL, not the ORM's bulk_create: a batch makes thousands at once.
    return len(await bulk.insert("risk_list_proposal", PROPOSAL_COLUMNS, made, conflict="open_key", returning=("id",)))


PROPOSAL_COLUMNS = (("bank_id", "bigint"), ("customer_id", "bigint"), ("signal_id", "bigint"), ("level", "text"), ("policy", "text"),
                    ("reason", "text"), ("status", "text"), ("open_key", "text"), ("created_at", "timestamptz"))


def _automatic_codes() -> list[str]:
    return [p.code for p in policies() if not p.confirm]


async def apply_automatic(bank_id: int | None = None, *, customer_id: int | None = None, limit: int = 10_000) -> int:
    """Apply the waiting proposals of policies without confirmation; returns how many entries
    were added (a proposal whose entry already exists is marked applied without a new one)."""
    query = ListProposal.filter(status=PROPOSED, policy__in=_automatic_codes())
    if bank_id is not None:
        query = query.filter(bank_id=bank_id)
    if customer_id is not None:
        query = query.filter(customer_id=customer_id)
    added = 0
    for proposal_id in await query.order_by("id").limit(limit).values_list("id", flat=True):
        async with in_transaction():
            proposal = await ListProposal.filter(id=proposal_id, status=PROPOSED).select_for_update().first()
            if proposal is not None:
                added += await _apply(ACTOR, proposal)
    return added


async def _apply(actor: Actor, proposal: ListProposal) -> int:
    customer = await Customer.get(id=proposal.customer_id)
    entry_id = None
    if customer.id_number or customer.phone:
        try:
            entry = await risk_lists.add(actor, level=proposal.level, id_number=customer.id_number, phone=customer.phone,
                                         reason=f"{proposal.reason}（信号{proposal.signal_id}）", bank_id=proposal.bank_id)
            entry_id = entry.id
        except DuplicateListEntry:
            pass
    await ListProposal.filter(id=proposal.id).update(status=APPLIED, open_key=None, entry_id=entry_id, decided_by=actor.label, decided_at=clock.now())
    return 1 if entry_id is not None else 0


# ---- risk officers ------------------------------------------------------------------------------


def listing(actor: Actor, *, status: str | None = PROPOSED):
    query = access.for_staff(ListProposal, actor, permission=READ)
    if status:
        query = query.filter(status=status)
    return query.order_by("id")


async def confirm(actor: Actor, proposal_id) -> ListProposal:
    """The officer confirms: the entry is added (on their authority, ``lists.manage`` too)."""
    access.require(actor, MANAGE)
    async with in_transaction():
        proposal = await _waiting(actor, proposal_id)
        await _apply(actor, proposal)
        await audit.record(actor, "risk.list_proposal_confirmed", "risk_list_proposal", proposal.id, bank_id=proposal.bank_id,
                           after={"level": proposal.level, "policy": proposal.policy})
        await proposal.refresh_from_db()
    return proposal


async def reject(actor: Actor, proposal_id, reason: str) -> ListProposal:
    access.require(actor, MANAGE)
    reason = pii.scrub_text((reason or "").strip())[:500] or "rejected"
    async with in_transaction():
        proposal = await _waiting(actor, proposal_id)
        await ListProposal.filter(id=proposal.id).update(status=REJECTED, open_key=None, decided_by=actor.label, decided_at=clock.now())
        await audit.record(actor, "risk.list_proposal_rejected", "risk_list_proposal", proposal.id, bank_id=proposal.bank_id,
                           after={"level": proposal.level, "policy": proposal.policy, "reason": reason})
        await proposal.refresh_from_db()
    return proposal


async def _waiting(actor: Actor, proposal_id) -> ListProposal:
    found = await access.for_staff(ListProposal, actor, permission=MANAGE).filter(
        id=access.as_object_id(proposal_id, ProposalNotFound())).select_for_update().first()
    if found is None:
        raise ProposalNotFound()
    if found.status != PROPOSED:
        raise ProposalDecided()
    return found


async def active_entry(customer_id: int, bank_id: int, level: str) -> ListEntry | None:
    """The customer's active entry of ``level`` at the bank, if any (tests and the console)."""
    customer = await Customer.get(id=customer_id)
    keys = [pii.lookup_hash(pii.ID_NUMBER, customer.id_number)] if customer.id_number else []
    return await ListEntry.filter(bank_id=bank_id, level=level, status="active", id_number_hash__in=keys).first() if keys else None
