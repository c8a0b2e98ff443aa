"""A sandbox telecom top-up aggregator (话费充值) for tests and the demo.

It behaves as such providers do: an order is keyed by the merchant's own order id (placing it
again answers with the first order's state and tops up nothing more; the same id with another
phone or amount is refused), only whole-yuan face values from 1 to 500 yuan are sold, and the
outcome depends on the number:

| number | answer |
| --- | --- |
| a virtual operator's (170, 171, 162, 165, 167 prefixes) | failed ``CARRIER_UNSUPPORTED`` |
| ending in 0000 | failed ``NUMBER_SUSPENDED`` (停机) |
| ending in 4 | pending, succeeds on a later query (the carrier confirms asynchronously) |
| any other mobile number | success at once |

Orders live in this process's memory (a real provider keeps them; a restarted demo forgets).
Phones are kept masked only.

A real integration needs an aggregator contract (or each carrier's), its signed order and query
APIs keyed by our order id, its callback for asynchronous results, and a daily statement to
reconcile against.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from marketing.ports import TOPUP_FAILED, TOPUP_PENDING, TOPUP_SUCCESS, TopUpResult

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")


@dataclass
class _Order:
    order_id: str
    phone_masked: str
    phone_digest: int
    amount_fen: int
    status: str
    provider_ref: str
    placed_at: float
    failure_code: str | None = None
    failure_reason: str | None = None


class SandboxTopUp:
    def __init__(self, *, pending_seconds: float = 0.0):
        # A pending order settles on the first query at least this long after it was placed.
        self._pending_seconds = pending_seconds
        self._orders: dict[str, _Order] = {}

    async def top_up(self, *, order_id: str, phone: str, amount_fen: int) -> TopUpResult:
        existing = self._orders.get(order_id)
        if existing is not None:
            if existing.phone_digest != hash(phone) or existing.amount_fen != amount_fen:
                return TopUpResult(order_id, TOPUP_FAILED, None, "ORDER_CONFLICT", "订单号已存在且参数不一致")
            return self._state(existing)
        order = _Order(
            order_id=order_id,
            phone_masked=f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "***",
            phone_digest=hash(phone),
            amount_fen=amount_fen,
            status=TOPUP_SUCCESS,
            provider_ref=f"TU{len(self._orders) + 1:012d}",
            placed_at=time.monotonic(),
        )
        failure = _refusal(phone, amount_fen)
        if failure:
            order.status, order.failure_code, order.failure_reason = TOPUP_FAILED, *failure
        elif phone.endswith("4"):
            order.status = TOPUP_PENDING
        self._orders[order_id] = order
        return self._state(order, settle=False)

    async def query(self, order_id: str) -> TopUpResult | None:
        order = self._orders.get(order_id)
        return self._state(order) if order else None

    def _state(self, order: _Order, *, settle: bool = True) -> TopUpResult:
        if settle and order.status == TOPUP_PENDING and time.monotonic() - order.placed_at >= self._pending_seconds:
            order.status = TOPUP_SUCCESS
        return TopUpResult(order.order_id, order.status, order.provider_ref, order.failure_code, order.failure_reason)


def _refusal(phone: str, amount_fen: int) -> tuple[str, str] | None:
    if not _MOBILE.match(phone):
        return ("INVALID_NUMBER", "号码格式错误")
    if amount_fen % 100 or not 100 <= amount_fen <= 50000:
        return ("INVALID_AMOUNT", "不支持的充值面额")
    if phone.startswith(VIRTUAL_PREFIXES):
        return ("CARRIER_UNSUPPORTED", "暂不支持虚拟运营商号码")
    if phone.endswith("0000"):
        return ("NUMBER_SUSPENDED", "号码已停机")
    return None
