"""What marketing needs from outside parties. The composition root hands in implementations (the
wechatpy mini-program client draws mini-program codes; the wechatpy WeChat Pay client sends red
packets; a top-up provider tops up phone credit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MiniProgramCodes(Protocol):
    """WeChat's ``getwxacodeunlimit``: a mini-program code opening ``page`` with ``scene``."""

    async def wxa_code(self, scene: str, page: str, width: int = 430) -> bytes: ...


# ---- WeChat Pay (v2): mini-program red packets ----------------------------------------------------


class WeChatPayRefused(Exception):
    """WeChat Pay answered that this payment will not be made (a final answer for this bill
    number: bad parameters, an openid not of our app, amount limits, a risk refusal)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.description = message


class WeChatPayUnavailable(Exception):
    """WeChat Pay did not give a final answer (busy, rate-limited, a timeout, our merchant account
    short of funds or misconfigured): the same bill number may be sent again, and WeChat Pay will
    pay it at most once."""

    def __init__(self, code: str | None, message: str = ""):
        super().__init__(f"{code or 'NO_ANSWER'}: {message}" if message else (code or "NO_ANSWER"))
        self.code = code
        self.description = message


@dataclass(frozen=True)
class RedPacketSent:
    """WeChat Pay accepted the red packet: ``package`` is what the mini-program hands to
    ``wx.sendBizRedPacket`` so the customer can open it."""

    bill_no: str
    send_listid: str
    amount_fen: int
    package: str


@dataclass(frozen=True)
class RedPacketRecord:
    """WeChat Pay's own record of one red packet (``gethbinfo``). Status is WeChat's:
    SENDING, SENT, FAILED, RECEIVED, RFUND_ING or REFUND (unclaimed, money back to the merchant)."""

    bill_no: str
    status: str
    amount_fen: int
    openid: str | None
    detail_id: str | None
    reason: str | None = None


class WeChatPay(Protocol):
    """The merchant's WeChat Pay v2 red-packet APIs. Every call is keyed by our bill number
    (``mch_billno``): sending one twice pays once."""

    mch_id: str
    appid: str

    async def send_mini_program_red_packet(
        self, *, bill_no: str, openid: str, amount_fen: int, act_name: str, wishing: str, remark: str
    ) -> RedPacketSent: ...

    async def red_packet_record(self, bill_no: str) -> RedPacketRecord | None:
        """WeChat Pay's record of the bill, or None when it has none."""
        ...

    def open_packet_params(self, package: str) -> dict:
        """What the mini-program passes to ``wx.sendBizRedPacket`` (signed with the merchant key)."""
        ...


# ---- phone credit (话费) top-up -------------------------------------------------------------------

TOPUP_SUCCESS, TOPUP_PENDING, TOPUP_FAILED = "success", "pending", "failed"


@dataclass(frozen=True)
class TopUpResult:
    """A top-up order's state at the provider. ``failure_code`` names why a failed one failed."""

    order_id: str
    status: str  # success | pending | failed
    provider_ref: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None


class TopUpUnavailable(Exception):
    """The top-up provider did not answer; the order may be placed again with the same id."""


class TopUpProvider(Protocol):
    """A telecom top-up aggregator: phone credit for a mobile number, idempotent on our order id
    (placing the same order twice tops up once and answers with the first order's state)."""

    async def top_up(self, *, order_id: str, phone: str, amount_fen: int) -> TopUpResult: ...

    async def query(self, order_id: str) -> TopUpResult | None:
        """The order's state, or None when the provider has never seen it."""
        ...


class MiniProgramOpenIds(Protocol):
    """Where a customer's mini-program openid is kept (the channels' WeChat accounts, encrypted):
    red packets are sent to it. Marketing does not read the channels' tables itself."""

    async def __call__(self, customer_id: int) -> str | None: ...
