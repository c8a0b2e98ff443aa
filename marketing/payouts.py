"""Paying rewards: the outbox handler of ``marketing.pay_reward`` and the daily reconciliation.

A reward becomes "due" in the transaction that grants it, with a ``marketing.pay_reward`` message
in the outbox. The relay hands the message here, at least once:

1. In one transaction the reward goes due → paying and gets its ``Payout`` row, whose bill number
   is derived from the outbox message (WeChat Pay's ``mch_billno``: merchant id + yyyymmdd + the
   message id in 10 digits; a top-up order id likewise). A retry finds the row and reuses it.
   Before the first attempt, a customer on a phone crowded with customers (``marketing.abuse``)
   is refused: the reward is returned to the budget, unpaid. The message may wait first: a
   campaign's ``payout_hold_minutes`` gives the check time to see a farm fill the phone.
2. Outside any transaction the payment is asked for: a mini-program red packet through WeChat
   Pay (to the customer's mini-program openid) for red packets and referral cash, a top-up to
   the customer's phone for phone credit. Both parties pay one bill number at most once.
3. In a second transaction the answer is recorded: paid; or refused for good — the reward is
   "returned", its amount goes back to the campaign's budget, and the reason is the customer's
   to see; or no final answer yet — the message is retried by the relay with its backoff.

A worker killed between 2 and 3 leaves the reward "paying"; the message's lease expires, the
relay sends it again, and step 2 names the same bill number, which WeChat Pay answers with the
original result instead of paying again. ``PAYOUT_FAULT=crash_after_wechat_pay_accepted`` stops
the worker exactly there (``CrashAfterAccepted``) so a drill can prove it.

When the relay's last attempt ends without a final answer, the party's own record decides:
found paid → paid; found nothing → returned; still unknown → the reward is "failed" (reason:
waiting for reconciliation) and the budget stays committed, since the money may be out.
Before a refusal on a retry is taken as final, the record is read too: a refusal of a repeated
bill number (WeChat Pay's FATAL_ERROR) must not return money that the first attempt paid.

``reconcile(day)`` matches the day's payouts with WeChat Pay's records and reports differences.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

from tortoise.transactions import in_transaction

from infra import audit, clock
from infra.actors import system
from infra.outbox import OutboxMessage, RelayPolicy
from infra.transitions import TransitionTable
from lending_core.customers.models import Customer
from marketing import abuse, campaigns
from marketing.models import DUE, FAILED, PAID, PAYING, PHONE_CREDIT, PHONE_TOPUP, RETURNED, WECHAT_RED_PACKET, Campaign, Payout, Reward
from marketing.ports import (
    TOPUP_FAILED,
    TOPUP_SUCCESS,
    MiniProgramOpenIds,
    RedPacketRecord,
    TopUpProvider,
    TopUpUnavailable,
    WeChatPay,
    WeChatPayRefused,
    WeChatPayUnavailable,
)

log = logging.getLogger(__name__)

PAY_TOPIC = "marketing.pay_reward"
ACTOR = "marketing.payouts"

# The payout part of a reward's life (the milestone part, held → due, is marketing.rewards).
REWARD_PAYOUT = TransitionTable(
    "reward",
    {
        ("pay", DUE): PAYING,
        ("confirm", PAYING): PAID,
        ("return", PAYING): RETURNED,
        ("give_up", PAYING): FAILED,
        # Reconciliation settles what the payout could not.
        ("confirm", FAILED): PAID,
        ("return", FAILED): RETURNED,
    },
)
PAYOUT_PAYING, PAYOUT_PAID, PAYOUT_FAILED, PAYOUT_UNKNOWN = "paying", "paid", "failed", "unknown"
PAYOUT_STATUS = TransitionTable(
    "payout",
    {
        ("confirm", PAYOUT_PAYING): PAYOUT_PAID,
        ("refuse", PAYOUT_PAYING): PAYOUT_FAILED,
        ("give_up", PAYOUT_PAYING): PAYOUT_UNKNOWN,
        ("confirm", PAYOUT_UNKNOWN): PAYOUT_PAID,
        ("refuse", PAYOUT_UNKNOWN): PAYOUT_FAILED,
    },
)
# What WeChat Pay's record of a bill says.
RECORD_PAID, RECORD_NOTHING, RECORD_UNKNOWN = "paid", "nothing", "unknown"
# WeChat Pay's statuses of a red packet that mean the money left the merchant's account.
PAID_THERE = {"SENDING", "SENT", "RECEIVED", "RFUND_ING", "REFUND"}

# Refused before paying: the customer's phone is a farm's (marketing.abuse).
SHARED_DEVICE = "SHARED_DEVICE"
# What the customer is told when a reward could not be paid (failure_code → reason).
REASONS = {
    "NO_MINI_PROGRAM_ACCOUNT": "未在小程序登录过，无法发放红包",
    "NO_PHONE": "未绑定手机号，无法充值话费",
    "MONEY_LIMIT": "金额超出微信支付红包限额",
    "SENDNUM_LIMIT": "今日领取红包个数已达微信支付上限",
    "RCVDAMOUNT_LIMIT": "今日领取红包金额已达微信支付上限",
    "NO_AUTH": "微信支付风控拦截了本次发放",
    "OPENID_ERROR": "微信账号与小程序不匹配",
    "CARRIER_UNSUPPORTED": "暂不支持该号码所属运营商",
    "NUMBER_SUSPENDED": "号码已停机",
    "INVALID_NUMBER": "手机号码无效",
    "NO_FINAL_ANSWER": "多次重试仍未成功",
    # Like a blacklisted inviter (marketing.rewards), a farm is not told which rule it broke.
    SHARED_DEVICE: "不符合活动规则",
}
WAITING_FOR_RECONCILIATION = "发放结果待核对，核对后到账或退回"


def bill_number(mch_id: str, on: date, serial: int) -> str:
    """WeChat Pay's ``mch_billno``: the 10-digit merchant id, the date as yyyymmdd and 10 digits
    unique for the merchant — 28 characters."""
    if not (mch_id.isdigit() and len(mch_id) == 10):
        raise ValueError("a WeChat Pay merchant id is 10 digits")
    if not 0 < serial < 10**10:
        raise ValueError("the serial of a bill number is 1 to 10 digits")
    return f"{mch_id}{on:%Y%m%d}{serial:010d}"


def top_up_order_id(on: date, serial: int) -> str:
    return f"PC{on:%Y%m%d}{serial:010d}"


def reason_for(code: str) -> str:
    return REASONS.get(code, f"发放失败（{code}）")


class PayoutPending(Exception):
    """The party has not given a final answer yet (WeChat Pay busy, a top-up still pending): the
    relay tries the same bill number again later."""


class CrashAfterAccepted:
    """Fault injection for the kill -9 drill (``PAYOUT_FAULT=crash_after_wechat_pay_accepted``):
    once WeChat Pay has accepted a payment and before our commit records it, write the bill
    number to the marker file (so the drill knows the moment has come) and freeze the whole
    worker — a blocking sleep, so nothing else in the process commits either — until killed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __call__(self, payout: Payout) -> None:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        with open(self.marker, "a", encoding="utf-8") as out:
            out.write(f"{payout.bill_no}\n")
            out.flush()
            os.fsync(out.fileno())
        log.warning("payout fault injected: frozen after WeChat Pay accepted", extra={"bill_no": payout.bill_no})
        while True:
            time.sleep(3600)


@dataclass
class Payer:
    """The ``marketing.pay_reward`` handler."""

    wechat_pay: WeChatPay
    top_up: TopUpProvider
    openids: MiniProgramOpenIds
    act_name: Callable[[Campaign], str] = lambda campaign: campaign.name[:32]
    after_accepted: Callable[[Payout], None] | None = None
    policy: RelayPolicy = field(default_factory=RelayPolicy)

    async def __call__(self, message: OutboxMessage) -> None:
        payout = await self._start(int(message.payload["reward_id"]), message)
        if payout is None:
            return
        # Checked before the first attempt only: a later one may follow a payment already made.
        if payout.attempts == 1 and await abuse.on_a_crowded_device(payout.customer_id):
            await refuse(payout, SHARED_DEVICE)
            return
        last_attempt = message.attempts >= self.policy.max_attempts
        try:
            if payout.channel == WECHAT_RED_PACKET:
                await self._send_red_packet(payout, last_attempt=last_attempt)
            else:
                await self._send_top_up(payout, last_attempt=last_attempt)
        except PayoutPending as pending:
            await Payout.filter(id=payout.id).update(last_error_code=str(pending)[:32])
            raise

    # ---- step 1: due → paying, the bill number fixed -----------------------------------------

    async def _start(self, reward_id: int, message: OutboxMessage) -> Payout | None:
        async with in_transaction():
            reward = await Reward.filter(id=reward_id).select_for_update().first()
            if reward is None:
                log.warning("pay_reward for a reward that does not exist", extra={"reward_id": reward_id, "outbox_id": message.id})
                return None
            if reward.status not in (DUE, PAYING):
                return None  # settled already (a repeated message), or not due yet
            payout = await Payout.filter(reward_id=reward.id).first()
            if payout is None:
                payout = await self._new_payout(reward, message)
            if reward.status == DUE:
                await _move_reward(reward, "pay")
            payout.attempts += 1
            await payout.save(update_fields=["attempts", "updated_at"])
            return payout

    async def _new_payout(self, reward: Reward, message: OutboxMessage) -> Payout:
        on = clock.business_date(message.created_at)
        if reward.kind == PHONE_CREDIT:
            channel, bill = PHONE_TOPUP, top_up_order_id(on, message.id)
        else:  # red packets and referral cash go out as mini-program red packets
            channel, bill = WECHAT_RED_PACKET, bill_number(self.wechat_pay.mch_id, on, message.id)
        return await Payout.create(
            reward_id=reward.id,
            bank_id=reward.bank_id,
            customer_id=reward.customer_id,
            channel=channel,
            bill_no=bill,
            business_date=on,
            outbox_message_id=message.id,
            amount_fen=reward.amount_fen,
            status=PAYOUT_PAYING,
        )

    # ---- step 2: ask the party ----------------------------------------------------------------

    async def _send_red_packet(self, payout: Payout, *, last_attempt: bool) -> None:
        openid = await self.openids(payout.customer_id)
        if not openid:
            await refuse(payout, "NO_MINI_PROGRAM_ACCOUNT")
            return
        reward = await Reward.get(id=payout.reward_id).prefetch_related("campaign")
        try:
            sent = await self.wechat_pay.send_mini_program_red_packet(
                bill_no=payout.bill_no,
                openid=openid,
                amount_fen=payout.amount_fen,
                act_name=self.act_name(reward.campaign),
                wishing="恭喜发财，感谢参与",
                remark=reward.campaign.name[:256],
            )
        except WeChatPayRefused as refused:
            # A refusal of a repeated bill number (FATAL_ERROR, say) must not return money that an
            # earlier attempt paid: WeChat Pay's record decides.
            said = await self._record_says(payout) if payout.attempts > 1 else RECORD_NOTHING
            if said == RECORD_NOTHING:
                await refuse(payout, refused.code)
            elif said == RECORD_UNKNOWN:
                raise PayoutPending(refused.code) from None
            return
        except WeChatPayUnavailable as unavailable:
            code = unavailable.code or "NO_ANSWER"
            if not last_attempt:
                raise PayoutPending(code) from None
            said = await self._record_says(payout)
            if said == RECORD_NOTHING:
                await refuse(payout, "NO_FINAL_ANSWER")
            elif said == RECORD_UNKNOWN:
                await give_up(payout, code)
            return
        if self.after_accepted is not None:
            self.after_accepted(payout)
        await confirm(payout, provider_ref=sent.send_listid, package=sent.package)

    async def _record_says(self, payout: Payout) -> str:
        """WeChat Pay's own record of the bill: PAID (and recorded so here), NOTHING paid, or
        UNKNOWN (it could not be read)."""
        try:
            record = await self.wechat_pay.red_packet_record(payout.bill_no)
        except (WeChatPayUnavailable, WeChatPayRefused):
            return RECORD_UNKNOWN
        if record is None or record.status not in PAID_THERE:
            return RECORD_NOTHING
        if record.amount_fen != payout.amount_fen:
            log.error("wechat pay paid another amount for this bill", extra={"bill_no": payout.bill_no})
        await confirm(payout, provider_ref=record.detail_id, package=None)
        return RECORD_PAID

    async def _send_top_up(self, payout: Payout, *, last_attempt: bool) -> None:
        customer = await Customer.get(id=payout.customer_id)
        if not customer.phone:
            await refuse(payout, "NO_PHONE")
            return
        try:
            result = await self.top_up.top_up(order_id=payout.bill_no, phone=customer.phone, amount_fen=payout.amount_fen)
        except TopUpUnavailable:
            if last_attempt:
                await give_up(payout, "NO_ANSWER")
                return
            raise PayoutPending("NO_ANSWER") from None
        if result.status == TOPUP_SUCCESS:
            await confirm(payout, provider_ref=result.provider_ref, package=None)
        elif result.status == TOPUP_FAILED:
            await refuse(payout, result.failure_code or "TOPUP_FAILED")
        elif last_attempt:
            await give_up(payout, "PENDING")
        else:
            raise PayoutPending("PENDING")


# ---- step 3: record the answer ---------------------------------------------------------------


async def confirm(payout: Payout, *, provider_ref: str | None, package: str | None) -> None:
    """The party paid: reward and payout paid, in one transaction."""
    async with in_transaction():
        reward = await Reward.filter(id=payout.reward_id).select_for_update().get()
        if reward.status == PAID:
            return
        before = reward.status
        now = clock.now()
        reward.paid_at = now
        reward.failure_code = None
        reward.reason = None
        await _move_reward(reward, "confirm", extra_fields=["paid_at", "failure_code", "reason"])
        await _move_payout(payout, "confirm", provider_ref=provider_ref or payout.provider_ref, package=package or payout.package, paid_at=now)
        await audit.record(
            system(ACTOR), "reward.paid", "reward", reward.id, bank_id=reward.bank_id,
            before={"status": before}, after={"status": PAID, "bill_no": payout.bill_no, "amount_fen": payout.amount_fen},
        )


async def refuse(payout: Payout, code: str) -> None:
    """Refused for good: the reward is returned, its amount goes back to the budget, and the
    customer sees why."""
    reason = reason_for(code)
    async with in_transaction():
        reward = await Reward.filter(id=payout.reward_id).select_for_update().get()
        if reward.status == RETURNED:
            return
        before = reward.status
        reward.failure_code, reward.reason = code[:32], reason
        await _move_reward(reward, "return", extra_fields=["failure_code", "reason"])
        await campaigns.release_budget(reward.campaign_id, reward.amount_fen)
        await _move_payout(payout, "refuse", failure_code=code[:32], failure_reason=reason)
        await audit.record(
            system(ACTOR), "reward.returned", "reward", reward.id, bank_id=reward.bank_id,
            before={"status": before}, after={"status": RETURNED, "failure_code": code, "bill_no": payout.bill_no},
        )
    log.info("reward returned to the budget", extra={"reward_id": payout.reward_id, "failure_code": code})


async def give_up(payout: Payout, code: str) -> None:
    """Every retry spent without a final answer: the money may be out, so the budget stays
    committed and reconciliation settles the reward."""
    async with in_transaction():
        reward = await Reward.filter(id=payout.reward_id).select_for_update().get()
        if reward.status != PAYING:
            return
        reward.failure_code, reward.reason = code[:32], WAITING_FOR_RECONCILIATION
        await _move_reward(reward, "give_up", extra_fields=["failure_code", "reason"])
        await _move_payout(payout, "give_up", last_error_code=code[:32])
        await audit.record(
            system(ACTOR), "reward.payout_unknown", "reward", reward.id, bank_id=reward.bank_id,
            before={"status": PAYING}, after={"status": FAILED, "failure_code": code, "bill_no": payout.bill_no},
        )
    log.error("payout gave up without a final answer", extra={"reward_id": payout.reward_id, "bill_no": payout.bill_no})


async def _move_reward(reward: Reward, event: str, *, extra_fields: list[str] = ()) -> None:
    reward.status = REWARD_PAYOUT.next(reward.status, event)
    await reward.save(update_fields=["status", *extra_fields])


async def _move_payout(payout: Payout, event: str, **changes) -> None:
    current = await Payout.filter(id=payout.id).select_for_update().get()
    status = PAYOUT_STATUS.next(current.status, event)
    await Payout.filter(id=payout.id).update(status=status, updated_at=clock.now(), **changes)
    payout.status = status
    for name, value in changes.items():
        setattr(payout, name, value)


# ---- reconciliation --------------------------------------------------------------------------

PAID_THERE_NOT_HERE, HERE_NOT_THERE, AMOUNT_MISMATCH, REFUNDED_UNCLAIMED, UNCHECKED = (
    "paid_there_not_here",
    "here_not_there",
    "amount_mismatch",
    "refunded_unclaimed",
    "unchecked",
)


@dataclass(frozen=True)
class Difference:
    kind: str
    bill_no: str
    reward_id: int | None
    ours_fen: int | None
    theirs_fen: int | None
    our_status: str | None
    their_status: str | None


@dataclass(frozen=True)
class Reconciliation:
    day: date
    checked: int
    matched: int
    differences: list[Difference]

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat(), "checked": self.checked, "matched": self.matched, "differences": [asdict(d) for d in self.differences]}


async def reconcile(day: date, wechat_pay: WeChatPay) -> Reconciliation:
    """Match the red-packet payouts whose bill numbers carry ``day`` with WeChat Pay's records
    (``gethbinfo`` per bill number). Bill numbers derive from outbox messages, so the day's
    ``marketing.pay_reward`` messages name every bill we could have sent, even one whose payout
    row was lost: WeChat Pay is asked about those too. Reports; changes nothing."""
    ours = {p.bill_no: p for p in await Payout.filter(business_date=day, channel=WECHAT_RED_PACKET)}
    expected: dict[str, int | None] = {bill: p.reward_id for bill, p in ours.items()}
    for bill, reward_id in await _bills_of_messages(day, wechat_pay.mch_id):
        expected.setdefault(bill, reward_id)
    differences, matched = [], 0
    for bill, reward_id in sorted(expected.items()):
        payout = ours.get(bill)
        try:
            record = await wechat_pay.red_packet_record(bill)
        except (WeChatPayUnavailable, WeChatPayRefused):
            differences.append(Difference(UNCHECKED, bill, reward_id, payout.amount_fen if payout else None, None, payout.status if payout else None, None))
            continue
        found = _difference(bill, reward_id, payout, record)
        if found is None:
            matched += 1
        else:
            differences.append(found)
    return Reconciliation(day=day, checked=len(expected), matched=matched, differences=differences)


def _difference(bill: str, reward_id: int | None, payout: Payout | None, record: RedPacketRecord | None) -> Difference | None:
    paid_there = record is not None and record.status in PAID_THERE
    paid_here = payout is not None and payout.status == PAYOUT_PAID
    ours_fen = payout.amount_fen if payout else None
    theirs_fen = record.amount_fen if record else None
    our_status = payout.status if payout else None
    their_status = record.status if record else None

    def differs(kind: str) -> Difference:
        return Difference(kind, bill, reward_id, ours_fen, theirs_fen, our_status, their_status)

    if paid_here and not paid_there:
        return differs(HERE_NOT_THERE)
    if paid_there and not paid_here:
        return differs(PAID_THERE_NOT_HERE)
    if not paid_here:
        return None  # paid on neither side
    if ours_fen != theirs_fen:
        return differs(AMOUNT_MISMATCH)
    if record.status in ("RFUND_ING", "REFUND"):
        return differs(REFUNDED_UNCLAIMED)
    return None


async def _bills_of_messages(day: date, mch_id: str) -> list[tuple[str, int | None]]:
    """The red-packet bill numbers the day's pay_reward messages stand for."""
    start = clock.business_day_start(day)
    messages = await OutboxMessage.filter(topic=PAY_TOPIC, created_at__gte=start, created_at__lt=start + timedelta(days=1)).values_list("id", "payload")
    reward_ids = {int(payload.get("reward_id")) for _, payload in messages if payload.get("reward_id") is not None}
    top_ups = set(await Reward.filter(id__in=reward_ids, kind=PHONE_CREDIT).values_list("id", flat=True))
    return [
        (bill_number(mch_id, day, message_id), int(payload["reward_id"]))
        for message_id, payload in messages
        if payload.get("reward_id") is not None and int(payload["reward_id"]) not in top_ups
    ]
