"""Warning signals: one open signal per loan (or customer) and rule, opened when the rule first
fires, updated while it keeps firing, closed when its condition clears.

``raise_signal`` is the one-at-a-time path (real-time monitoring, a test, a staff action); the
daily batch writes the same rows set-based (``batch``) and then calls the same follow-ups —
a disposal task for a signal of high severity (``tasks``), list proposals by the list policy
(``lists``) — for the signals it opened. Uniqueness of the open signal is the database's job:
``open_key`` is unique and set only while the signal is open, so two workers raising the same
signal at once end with one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from infra import audit
from infra.actors import system
from lending_core.risk import schema
from lending_core.risk.errors import InvalidSignal, SignalNotFound
from lending_core.risk.models import CLOSED, OPEN, SEVERITIES, SIGNAL_SOURCES, WarningSignal

CATEGORIES = (*schema.CATEGORIES, "realtime")
ACTOR = system("risk-signals")


def open_key(*, bank_id: int, loan_id: int | None, customer_id: int, rule_code: str) -> str:
    """What makes a signal the same signal: its loan and rule (or, without a loan, the
    customer at the bank and the rule)."""
    return f"L{loan_id}:{rule_code}" if loan_id is not None else f"C{bank_id}:{customer_id}:{rule_code}"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def clean_facts(facts: Mapping[str, Any] | None) -> dict:
    """Facts as stored: JSON-safe, with anything that looks like personal data masked."""
    return audit.masked({str(k): v for k, v in (facts or {}).items()})


async def raise_signal(
    *,
    bank_id: int,
    customer_id: int,
    loan_id: int | None,
    product_code: str,
    rule_code: str,
    category: str,
    severity: str,
    source: str,
    facts: Mapping[str, Any] | None,
    at: datetime,
) -> WarningSignal:
    """Open the signal, or update the open one (last seen, times, facts, severity); a newly
    opened signal (or one raised to a higher severity) opens a disposal task when its severity
    calls for one, and goes through the list policy. Runs in the caller's transaction if any."""
    from lending_core.risk import lists, tasks  # they import this module

    if severity not in SEVERITIES:
        raise InvalidSignal(f"severity must be one of {', '.join(SEVERITIES)}")
    if source not in SIGNAL_SOURCES:
        raise InvalidSignal(f"source must be one of {', '.join(SIGNAL_SOURCES)}")
    if category not in CATEGORIES:
        raise InvalidSignal(f"category must be one of {', '.join(CATEGORIES)}")
    if at.tzinfo is None:
        raise InvalidSignal("at must be timezone-aware")
    key = open_key(bank_id=bank_id, loan_id=loan_id, customer_id=customer_id, rule_code=rule_code)
    stored = clean_facts(facts)
    async with in_transaction():
        signal, opened, raised = await _open_or_update(key, bank_id=bank_id, customer_id=customer_id, loan_id=loan_id,
                                                       product_code=product_code, rule_code=rule_code, category=category,
                                                       severity=severity, source=source, facts=stored, at=at)
        if opened:
            await audit.record(ACTOR, "risk.signal_opened", "warning_signal", signal.id, bank_id=bank_id,
                               after={"rule_code": rule_code, "severity": severity, "source": source, "loan_id": loan_id})
        if opened or raised:
            await tasks.open_for_signals([signal], at=at)
        if opened:
            if await lists.propose_for_signals([signal], at=at):
                await lists.apply_automatic(bank_id, customer_id=customer_id)
    return signal


async def _open_or_update(key: str, *, at: datetime, severity: str, facts: dict, **fields) -> tuple[WarningSignal, bool, bool]:
    """(the signal, whether it was opened now, whether its severity went up)."""
    for _ in range(2):
        existing = await WarningSignal.filter(open_key=key).select_for_update().first()
        if existing is not None:
            raised = severity_rank(severity) > severity_rank(existing.severity)
            await WarningSignal.filter(id=existing.id).update(
                last_seen_at=max(at, existing.last_seen_at), times=F("times") + 1, facts=facts,
                severity=severity if raised else existing.severity,
            )
            await existing.refresh_from_db()
            return existing, False, raised
        try:
            async with in_transaction():  # a savepoint: a concurrent opener wins, we update theirs
                signal = await WarningSignal.create(open_key=key, status=OPEN, severity=severity, facts=facts,
                                                    first_seen_at=at, last_seen_at=at, times=1, **fields)
            return signal, True, False
        except IntegrityError:
            continue
    raise RuntimeError(f"signal {key} could neither be opened nor found")  # pragma: no cover


async def close_signal(signal_id: int, *, at: datetime, reason: str) -> None:
    """Close an open signal (its condition cleared, or a person closed it). Closing a closed
    signal changes nothing."""
    async with in_transaction():
        signal = await WarningSignal.filter(id=signal_id).select_for_update().first()
        if signal is None:
            raise SignalNotFound()
        if signal.status == CLOSED:
            return
        await WarningSignal.filter(id=signal_id, status=OPEN).update(status=CLOSED, open_key=None, closed_at=at, closed_reason=reason[:64])
        await audit.record(ACTOR, "risk.signal_closed", "warning_signal", signal_id, bank_id=signal.bank_id, after={"reason": reason[:64]})


# ---- risk officers ------------------------------------------------------------------------------


def listing(actor, *, status: str | None = None, severity: str | None = None, category: str | None = None,
            rule_code: str | None = None, loan_id: int | None = None, source: str | None = None):
    """The signals the staff member may see (their bank's; all for association staff), filtered."""
    from lending_core import access

    query = access.for_staff(WarningSignal, actor, permission="risk.read")
    for name, value in (("status", status), ("severity", severity), ("category", category), ("rule_code", rule_code),
                        ("loan_id", loan_id), ("source", source)):
        if value is not None:
            query = query.filter(**{name: value})
    return query


async def get(actor, signal_id) -> WarningSignal:
    from lending_core import access

    found = await listing(actor).filter(id=access.as_object_id(signal_id, SignalNotFound())).first()
    if found is None:
        raise SignalNotFound()
    return found


async def rule_of(signal: WarningSignal):
    """The rule that raised the signal, as live for its bank now (its name and the suggested
    disposal). None for a real-time rule: those are coded events, not entries of the rule book."""
    from lending_core.risk import rulebook  # it imports the risk package's models

    try:
        return (await rulebook.current_rules(signal.bank_id)).library[signal.rule_code]
    except KeyError:
        return None


async def detail(actor, signal_id):
    """The signal with its rule (None for a real-time one), for an officer reading it."""
    signal = await get(actor, signal_id)
    return signal, await rule_of(signal)
