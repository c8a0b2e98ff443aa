"""Risk disposal (风险处置): a signal of ``TASK_SEVERITY`` or above opens a task for the loan's
bank, assigned round-robin to a risk officer of the customer's home branch at that bank (any
risk officer of the bank when the branch has none, unassigned when the bank has none), with a
deadline by severity. The officer is told by SMS through the outbox (topic ``risk.task_sms``):
masked name, loan reference and rule, never clear personal data. One message is queued per
officer given tasks (not per task: a batch opens hundreds of thousands of tasks for a few
dozen officers), texts are rate-limited per officer, and one text tells of every task still
untold, so a batch that opens many tasks at once sends a few texts, not hundreds.

status: open → in_progress (an officer takes it) → resolved | escalated (open tasks may be
escalated too).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Protocol

import orjson

from tortoise.transactions import in_transaction

from infra import audit, clock, pii, sql
from infra.actors import Actor, system
from infra.outbox import PENDING, OutboxMessage
from infra.transitions import TransitionTable
from lending_core import access
from lending_core.contracts.ports import SmsSender
from lending_core.ledger import bulk
from lending_core.customers.models import Customer
from lending_core.org.models import Bank, Staff
from lending_core.org.roles import Role
from lending_core.risk.errors import InvalidNote, TaskNotFound, TaskNotYours
from lending_core.risk.library import Rule
from lending_core.risk.models import DisposalTask, WarningSignal

SMS_TOPIC = "risk.task_sms"
TASK_SEVERITY = "warning"
DEADLINES = {"warning": timedelta(days=3), "severe": timedelta(days=1)}
SMS_PER_HOUR = 10
MAX_NOTE = 1000
READ, MANAGE = "risk.read", "risk.manage"
ACTOR = system("risk-tasks")

OPEN, IN_PROGRESS, RESOLVED, ESCALATED = "open", "in_progress", "resolved", "escalated"
STATUS = TransitionTable("disposal task", {
    ("take", OPEN): IN_PROGRESS,
    ("resolve", IN_PROGRESS): RESOLVED,
    ("escalate", IN_PROGRESS): ESCALATED,
    ("escalate", OPEN): ESCALATED,
})


class SignalLike(Protocol):
    id: int
    bank_id: int
    customer_id: int
    loan_id: int | None
    rule_code: str
    severity: str


def needs_task(severity: str) -> bool:
    from lending_core.risk.signals import severity_rank

    return severity_rank(severity) >= severity_rank(TASK_SEVERITY)


def loan_reference(bank_code: str, loan_id: int | None) -> str:
    return f"{bank_code}-L{loan_id:08d}" if loan_id is not None else f"{bank_code}-客户预警"


async def open_for_signals(signals: Iterable[SignalLike], *, at: datetime) -> int:
    """Open the tasks these signals call for (none twice for one signal), assign them and queue
    the officers' texts, set-based: a few queries whatever the number of signals. Returns how
    many tasks were opened. Runs in the caller's transaction."""
    wanted = [s for s in signals if needs_task(s.severity)]
    if not wanted:
        return 0
    have = {row["signal_id"] for row in await _rows_for_ids("SELECT signal_id FROM risk_disposal_task WHERE {ids}", "signal_id", [s.id for s in wanted])}
    wanted = [s for s in wanted if s.id not in have]
    if not wanted:
        return 0
    banks = sorted({s.bank_id for s in wanted})
    homes = {(r["bank_id"], r["customer_id"]): r["home_branch_id"] for r in await _rows_for_ids(
        f"SELECT bank_id, customer_id, home_branch_id FROM bank_relationship WHERE {bank_scope(banks)} AND {{ids}}", "customer_id",
        sorted({s.customer_id for s in wanted}))}
    officers: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for staff in await Staff.filter(bank_id__in=banks, is_active=True).order_by("id").values("id", "bank_id", "branch_id", "roles"):
        if Role.RISK_OFFICER.value in (staff["roles"] or []):
            officers[staff["bank_id"], staff["branch_id"]].append(staff["id"])
            officers[staff["bank_id"], None].append(staff["id"])
    # Round-robin: each branch's (or bank's) next officer follows the tasks it already has.
    counts: dict[tuple[int, int | None], int] = {}
    tasks = []
    now = clock.now()
    for signal in wanted:
        branch = homes.get((signal.bank_id, signal.customer_id))
        pool_key = (signal.bank_id, branch) if officers.get((signal.bank_id, branch)) else (signal.bank_id, None)
        pool = officers.get(pool_key, [])
        if pool_key not in counts:
            query = DisposalTask.filter(bank_id=signal.bank_id)
            query = query.filter(branch_id=branch) if pool_key[1] is not None else query.filter(branch_id__isnull=True)
            counts[pool_key] = await query.count()
        officer = pool[counts[pool_key] % len(pool)] if pool else None
        counts[pool_key] += 1
        tasks.append((signal.bank_id, signal.id, branch, officer, OPEN, signal.severity,
                      at + DEADLINES.get(signal.severity, DEADLINES[TASK_SEVERITY]), "[]", now, now))
    # Bulk SQL, not the ORM's bulk_create: a batch opens tens of thousands of tasks at once.
    await bulk.insert("risk_disposal_task", TASK_COLUMNS, tasks)
    # The text is composed when sent (names are looked up then, never stored in the payload).
    told = sorted({(bank_id, officer) for bank_id, _, _, officer, *_ in tasks if officer is not None})
    await bulk.insert("outbox_message", OUTBOX_COLUMNS, [
        (SMS_TOPIC, orjson.dumps({"officer_id": officer}).decode(), bank_id, PENDING, 0, now, now) for bank_id, officer in told
    ])
    return len(tasks)


TASK_COLUMNS = (("bank_id", "bigint"), ("signal_id", "bigint"), ("branch_id", "bigint"), ("assigned_to_id", "bigint"), ("status", "text"),
                ("severity", "text"), ("deadline", "timestamptz"), ("notes", "jsonb"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"))
OUTBOX_COLUMNS = (("topic", "text"), ("payload", "jsonb"), ("bank_id", "bigint"), ("status", "text"), ("attempts", "int"),
                  ("next_attempt_at", "timestamptz"), ("created_at", "timestamptz"))
IDS_PER_QUERY = 10_000  # SQLite takes one placeholder per id


def bank_scope(banks: list[int]) -> str:
    return f"bank_id IN ({', '.join(str(int(b)) for b in banks)})"


async def _rows_for_ids(query: str, column: str, ids: list[int]) -> list[dict]:
    """``query`` (its ``{ids}`` the condition on ``column``) over the ids, a slice at a time."""
    rows: list[dict] = []
    for start in range(0, len(ids), IDS_PER_QUERY):
        condition, params = bulk.in_ids(column, "ids", ids[start:start + IDS_PER_QUERY])
        rows += await sql.fetch_all(query.format(ids=condition), **params)
    return rows


class SmsRateLimited(Exception):
    """The officer was texted the most allowed in an hour: the outbox retries later."""


def sms_handler(sms: SmsSender, *, per_hour: int = SMS_PER_HOUR):
    """The outbox handler of ``risk.task_sms``: one text to the officer about their most urgent
    untold task, counting the others, which it marks told with it. Idempotent: an officer with
    no untold task (this message was delivered before, or a later one told of everything) is
    not texted."""

    async def handle(message: OutboxMessage) -> None:
        officer = await Staff.get_or_none(id=await _officer_of(message.payload))
        if officer is None or not officer.phone or not officer.is_active:
            return
        untold = DisposalTask.filter(assigned_to_id=officer.id, sms_sent_at__isnull=True, status__in=(OPEN, IN_PROGRESS))
        ids = await untold.order_by("deadline", "id").values_list("id", flat=True)
        if not ids:
            return
        now = clock.now()
        recent = await DisposalTask.filter(assigned_to_id=officer.id, sms_sent_at__gte=now - timedelta(hours=1)).values_list("sms_sent_at", flat=True)
        if len(set(recent)) >= per_hour:
            raise SmsRateLimited(f"officer {officer.id} had {per_hour} texts in the last hour")
        await sms.send(officer.phone, await task_text(await DisposalTask.get(id=ids[0]), others=len(ids) - 1))
        # By condition, not by a list of ids: a batch may give one officer tens of thousands.
        await untold.filter(id__lte=max(ids)).update(sms_sent_at=now)

    return handle


async def _officer_of(payload: dict) -> int | None:
    if "officer_id" in payload:
        return int(payload["officer_id"])
    # A message queued per task, before messages were queued per officer.
    task = await DisposalTask.filter(signal_id=int(payload["signal_id"])).first()
    return task.assigned_to_id if task is not None else None


async def task_text(task: DisposalTask, *, others: int = 0) -> str:
    """The officer's text: bank, masked customer name, loan reference, rule and deadline."""
    from lending_core.risk.batch import shipped_library

    signal = await WarningSignal.get(id=task.signal_id)
    bank = await Bank.get(id=task.bank_id)
    customer = await Customer.get(id=signal.customer_id)
    try:
        rule_name = shipped_library()[signal.rule_code].name
    except KeyError:
        rule_name = signal.rule_code
    more = f"（另有{others}项新任务待处理）" if others else ""
    return (f"【{bank.name}】风险处置任务：客户{pii.mask_name(customer.name or '')}，借据{loan_reference(bank.code, signal.loan_id)}，"
            f"预警{signal.rule_code} {rule_name}，请于{clock.business_date(task.deadline).isoformat()}前处理。{more}")


# ---- officers' work -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilter:
    status: str | None = None
    assigned_to_me: bool = False
    severity: str | None = None


def visible(actor: Actor, *, permission: str = READ):
    return access.for_staff(DisposalTask, actor, permission=permission)


def listing(actor: Actor, filters: TaskFilter = TaskFilter()):
    query = visible(actor)
    if filters.status:
        query = query.filter(status=filters.status)
    if filters.severity:
        query = query.filter(severity=filters.severity)
    if filters.assigned_to_me:
        query = query.filter(assigned_to_id=int(actor.id))
    return query.order_by("deadline", "id")


async def get(actor: Actor, task_id) -> DisposalTask:
    found = await visible(actor).filter(id=access.as_object_id(task_id, TaskNotFound())).first()
    if found is None:
        raise TaskNotFound()
    return found


async def take(actor: Actor, task_id) -> DisposalTask:
    """The officer takes the task: it is theirs from now on."""
    return await _move(actor, task_id, "take", assign=True)


async def resolve(actor: Actor, task_id, outcome: str) -> DisposalTask:
    return await _move(actor, task_id, "resolve", note=outcome)


async def escalate(actor: Actor, task_id, reason: str) -> DisposalTask:
    return await _move(actor, task_id, "escalate", note=reason)


async def add_note(actor: Actor, task_id, text: str) -> DisposalTask:
    text = _note(text)
    async with in_transaction():
        task = await _locked(actor, task_id)
        _check_worker(actor, task)
        notes = [*(task.notes or []), {"at": clock.now().isoformat(), "staff_id": int(actor.id), "text": text}]
        await DisposalTask.filter(id=task.id).update(notes=notes)
        await audit.record(actor, "risk.task_note", "risk_disposal_task", task.id, bank_id=task.bank_id, after={"note": text})
        await task.refresh_from_db()
    return task


async def _move(actor: Actor, task_id, event: str, *, assign: bool = False, note: str | None = None) -> DisposalTask:
    text = _note(note) if note is not None else None
    async with in_transaction():
        task = await _locked(actor, task_id)
        if not assign:
            _check_worker(actor, task)
        status = STATUS.next(task.status, event)
        now = clock.now()
        changes: dict = {"status": status}
        if assign:
            changes["assigned_to_id"] = int(actor.id)
        if text is not None:
            changes["notes"] = [*(task.notes or []), {"at": now.isoformat(), "staff_id": int(actor.id), "text": text}]
            changes["outcome"] = text
        if status in (RESOLVED, ESCALATED):
            changes["closed_at"] = now
        await DisposalTask.filter(id=task.id).update(**changes)
        await audit.record(actor, f"risk.task_{event}", "risk_disposal_task", task.id, bank_id=task.bank_id,
                           before={"status": task.status, "assigned_to_id": task.assigned_to_id},
                           after={"status": status, "assigned_to_id": changes.get("assigned_to_id", task.assigned_to_id), "note": text})
        await task.refresh_from_db()
    return task


async def _locked(actor: Actor, task_id) -> DisposalTask:
    access.require(actor, MANAGE)
    found = await visible(actor, permission=MANAGE).filter(id=access.as_object_id(task_id, TaskNotFound())).select_for_update().first()
    if found is None:
        raise TaskNotFound()
    return found


def _check_worker(actor: Actor, task: DisposalTask) -> None:
    if task.status == IN_PROGRESS and task.assigned_to_id != int(actor.id) and not actor.is_association:
        raise TaskNotYours()


def _note(text: str | None) -> str:
    text = (text or "").strip()
    if not text or len(text) > MAX_NOTE:
        raise InvalidNote()
    return pii.scrub_text(text)


@dataclass(frozen=True)
class TaskDetail:
    """A task as an officer works it: the task, the signal it disposes of, and that signal's rule
    (name and suggested disposal; None for a real-time signal)."""

    task: DisposalTask
    signal: WarningSignal
    rule: Rule | None


async def detail(actor: Actor, task_id) -> TaskDetail:
    from lending_core.risk import signals

    task = await get(actor, task_id)
    signal = await WarningSignal.get(id=task.signal_id)
    return TaskDetail(task, signal, await signals.rule_of(signal))
