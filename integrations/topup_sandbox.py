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

Orders live in this process's memory (a real provider keeps them; a restarted demo forgets),
unless a journal file is given (``TOPUP_SANDBOX_FILE``): then every order and every change of its
state is appended to it as a JSON line, written through to disk before the answer, and read back
when the sandbox is built again — so a payout worker killed with -9 and restarted finds the
orders it placed and tops up nothing twice, as a real provider's memory would. Phones are kept
masked only (the journal holds a keyed digest, its key in the journal's first line, so the same
order id with another phone is still refused after a restart).

A real integration needs an aggregator contract (or each carrier's), its signed order and query
APIs keyed by our order id, its callback for asynchronous results, and a daily statement to
reconcile against.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from marketing.ports import TOPUP_FAILED, TOPUP_PENDING, TOPUP_SUCCESS, TopUpResult

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")
# The journal's events: an order placed (a top-up made or refused), a pending order settled.
PLACED, SETTLED = "placed", "settled"


@dataclass
class _Order:
    order_id: str
    phone_masked: str
    phone_digest: str
    amount_fen: int
    status: str
    provider_ref: str
    placed_at: float
    failure_code: str | None = None
    failure_reason: str | None = None


class SandboxTopUp:
    def __init__(self, *, pending_seconds: float = 0.0, journal: Path | None = None):
        # A pending order settles on the first query at least this long after it was placed.
        self._pending_seconds = pending_seconds
        self._orders: dict[str, _Order] = {}
        self._journal = journal
        self._key = secrets.token_bytes(16)
        if journal is not None:
            self._key = _load_journal(journal, self._orders) or self._start_journal(journal)
            _end_cut_line(journal)

    def _digest(self, phone: str) -> str:
        return hashlib.blake2b(phone.encode(), key=self._key, digest_size=16).hexdigest()

    def _start_journal(self, journal: Path) -> bytes:
        """Create the journal with this sandbox's digest key; when another process (the API and
        the relay both build the providers) created it meanwhile, take the key it wrote."""
        journal.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(journal, "x", encoding="utf-8") as out:
                out.write(json.dumps({"journal": "topup-sandbox", "key": self._key.hex()}) + "\n")
                out.flush()
                os.fsync(out.fileno())
            return self._key
        except FileExistsError:
            for _ in range(100):
                key = _load_journal(journal, {})
                if key is not None:
                    return key
                time.sleep(0.01)  # its creator is between creating the file and writing the key
            raise

    def _append(self, record: dict) -> None:
        # Written through before the answer: what the sandbox said it did survives a kill -9.
        with open(self._journal, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _record(self, event: str, order: _Order) -> None:
        if self._journal is not None:
            self._append({"event": event, **asdict(order), "placed_at": time.time() - (time.monotonic() - order.placed_at)})

    async def top_up(self, *, order_id: str, phone: str, amount_fen: int) -> TopUpResult:
        existing = self._orders.get(order_id)
        if existing is not None:
            if existing.phone_digest != self._digest(phone) or existing.amount_fen != amount_fen:
                return TopUpResult(order_id, TOPUP_FAILED, None, "ORDER_CONFLICT", "订单号已存在且参数不一致")
            return self._state(existing)
        order = _Order(
            order_id=order_id,
            phone_masked=f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "***",
            phone_digest=self._digest(phone),
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
        self._record(PLACED, order)
        return self._state(order, settle=False)

    async def query(self, order_id: str) -> TopUpResult | None:
        order = self._orders.get(order_id)
        return self._state(order) if order else None

    def _state(self, order: _Order, *, settle: bool = True) -> TopUpResult:
        if settle and order.status == TOPUP_PENDING and time.monotonic() - order.placed_at >= self._pending_seconds:
            order.status = TOPUP_SUCCESS
            self._record(SETTLED, order)
        return TopUpResult(order.order_id, order.status, order.provider_ref, order.failure_code, order.failure_reason)


def _load_journal(journal: Path, orders: dict[str, _Order]) -> bytes | None:
    """Read the journal's orders (each order's last line wins) and return its digest key; None
    when there is no journal yet. A last line cut short by a kill mid-write was never answered,
    so it is skipped."""
    if not journal.exists():
        return None
    key = None
    for record in _records(journal):
        if "key" in record:
            key = key or bytes.fromhex(record["key"])
            continue
        record.pop("event")
        # Wall-clock placing time back onto this process's monotonic clock.
        record["placed_at"] = time.monotonic() - (time.time() - record["placed_at"])
        orders[record["order_id"]] = _Order(**record)
    return key


def _end_cut_line(journal: Path) -> None:
    """End a line cut short by a kill mid-write, so that the next order starts a line of its own
    instead of being glued to the broken one (and lost with it on the next reload)."""
    with open(journal, "rb+") as out:
        if out.seek(0, os.SEEK_END) and (out.seek(-1, os.SEEK_END), out.read(1))[1] != b"\n":
            out.write(b"\n")
            out.flush()
            os.fsync(out.fileno())


def journal_orders(journal: Path) -> list[dict]:
    """Every line of a journal that names an order, in order (what a drill counts)."""
    return [record for record in _records(journal) if "event" in record]


def _records(journal: Path) -> Iterator[dict]:
    """The journal's whole lines (one cut short by a kill mid-write is skipped)."""
    if not journal.exists():
        return
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue


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
