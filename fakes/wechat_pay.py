"""A fake WeChat Pay (v2) for mini-program red packets, mounted in the fake WeChat server
(``python -m fakes.wechat``), so tests and ``make run`` pay into it.

It speaks WeChat Pay's protocol, not our client's: XML bodies, an MD5 signature over the sorted
non-empty parameters and the merchant key (checked, and refused with WeChat Pay's SIGN_ERROR
answer), and WeChat Pay's answer fields (``return_code``, ``result_code``, ``err_code``,
``err_code_des``). Like WeChat Pay it pays one bill number (``mch_billno``) at most once: a
repeated bill number is answered with the original result, and one repeated with another openid
or amount with FATAL_ERROR.

- ``POST /mmpaymkttransfers/sendminiprogramhb``: pays (from the merchant's balance) and answers
  the ``package`` the mini-program passes to ``wx.sendBizRedPacket``.
- ``POST /mmpaymkttransfers/gethbinfo``: its record of a bill (SENT, RECEIVED, REFUND...), or
  NOT_FOUND.

Test hooks under ``/__fake__/pay/``: faults (``error`` answers an err_code and does nothing,
``delay`` sleeps then works, ``lost_answer`` pays and then answers SYSTEMERROR as if the answer
were lost on the way), the ledger of payments (what was really paid, per bill, and how many
requests named it), a merchant's balance, a customer opening or never claiming a packet, reset.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sanic import Request, Sanic, response

from fakes.faults import next_fault
from infra.settings import DEMO_WECHAT_PAY_MCH_ID, DEV_WECHAT_PAY_API_KEY

DEFAULT_MERCHANTS = {DEMO_WECHAT_PAY_MCH_ID: DEV_WECHAT_PAY_API_KEY}
BEIJING = ZoneInfo("Asia/Shanghai")
UNLIMITED_FEN = 10**15

SEND_FIELDS = ("mch_billno", "mch_id", "wxappid", "send_name", "re_openid", "total_amount", "total_num", "wishing", "act_name", "remark", "notify_way", "nonce_str", "sign")
QUERY_FIELDS = ("mch_billno", "mch_id", "appid", "bill_type", "nonce_str", "sign")
SCENES = {f"PRODUCT_{n}" for n in range(1, 9)}
# Amounts, as WeChat Pay documents them: 1 to 200 yuan, or 0.30 to 499 yuan with a scene_id.
PLAIN_RANGE, SCENE_RANGE = (100, 20000), (30, 49900)

MESSAGES = {
    "SUCCESS": "发放成功",
    "SIGN_ERROR": "签名错误",
    "PARAM_ERROR": "参数错误",
    "XML_ERROR": "输入xml参数格式错误",
    "NOTENOUGH": "帐号余额不足，请到商户平台充值后再重试",
    "SYSTEMERROR": "请求已受理，请稍后使用原单号查询发放结果",
    "FREQ_LIMIT": "超过频率限制,请稍后再试",
    "FATAL_ERROR": "openid和原始单参数不一致",
    "MONEY_LIMIT": "红包金额发放限制",
    "ILLEGAL_APPID": "非法appid，请确认是否为公众号的appid，不能为APP的appid",
    "NOT_FOUND": "指定单号数据不存在",
}


@dataclass
class PayFault:
    mode: str  # "error", "delay" or "lost_answer"
    err_code: str = "SYSTEMERROR"
    err_code_des: str = ""
    seconds: float = 0.0
    times: int = 1


@dataclass
class Packet:
    mch_id: str
    mch_billno: str
    wxappid: str
    re_openid: str
    total_amount: int
    act_name: str
    wishing: str
    remark: str
    send_listid: str
    detail_id: str
    package: str
    send_time: str
    status: str = "SENT"
    rcv_time: str | None = None
    refund_time: str | None = None
    requests: int = 1


@dataclass
class PayState:
    merchants: dict[str, str]
    appids: set[str]
    balances: dict[str, int] = field(default_factory=dict)
    packets: dict[tuple[str, str], Packet] = field(default_factory=dict)
    faults: dict[str, list[PayFault]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    serial: itertools.count = field(default_factory=lambda: itertools.count(1))


def sign(params: dict[str, str], key: str) -> str:
    """WeChat Pay v2's MD5 signature: non-empty parameters but ``sign``, sorted by name, joined as
    ``k=v&...``, then ``&key=<merchant key>``; upper-case hex."""
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] not in (None, ""))
    return hashlib.md5(f"{text}&key={key}".encode("utf-8")).hexdigest().upper()


def to_xml(fields: dict) -> str:
    parts = ["<xml>"]
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, int):
            parts.append(f"<{key}>{value}</{key}>")
        elif isinstance(value, list):  # hblist: a list of hbinfo elements
            parts.append(f"<{key}>" + "".join(f"<hbinfo>{_inner(item)}</hbinfo>" for item in value) + f"</{key}>")
        else:
            parts.append(f"<{key}><![CDATA[{value}]]></{key}>")
    parts.append("</xml>")
    return "".join(parts)


def _inner(item: dict) -> str:
    return to_xml(item)[len("<xml>") : -len("</xml>")]


def parse_xml(body: bytes) -> dict[str, str] | None:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    if root.tag != "xml":
        return None
    return {child.tag: (child.text or "").strip() for child in root}


def _now_text() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _answer(fields: dict) -> response.HTTPResponse:
    return response.text(to_xml(fields), content_type="text/xml; charset=utf-8")


def _fail(err_code: str, message: str | None = None, *, communication: bool = False, **echo) -> response.HTTPResponse:
    """A refusal. A bad signature or unreadable request fails at the communication level
    (return_code FAIL); anything else is a business failure (return_code SUCCESS, result_code FAIL)."""
    message = message or MESSAGES.get(err_code, err_code)
    return _answer(
        {
            "return_code": "FAIL" if communication else "SUCCESS",
            "return_msg": message,
            "result_code": "FAIL",
            "err_code": err_code,
            "err_code_des": message,
            **echo,
        }
    )


def mount_fake_wechat_pay(app: Sanic, *, appids: set[str], merchants: dict[str, str] | None = None) -> PayState:
    state = PayState(merchants=dict(merchants or DEFAULT_MERCHANTS), appids=set(appids))
    app.ctx.wechat_pay = state

    async def injected(endpoint: str) -> PayFault | None:
        return await next_fault(state.calls, state.faults, endpoint)

    def signed_request(request: Request, required: tuple[str, ...]) -> tuple[dict | None, response.HTTPResponse | None]:
        params = parse_xml(request.body)
        if params is None:
            return None, _fail("XML_ERROR", communication=True)
        missing = [name for name in required if not params.get(name)]
        if missing:
            return None, _fail("PARAM_ERROR", f"{missing[0]}字段必填", communication=True)
        key = state.merchants.get(params["mch_id"])
        if key is None:
            return None, _fail("PARAM_ERROR", "mch_id参数错误", communication=True)
        if params.get("sign_type", "MD5") != "MD5" or params["sign"] != sign(params, key):
            return None, _fail("SIGN_ERROR", communication=True)
        return params, None

    @app.post("/mmpaymkttransfers/sendminiprogramhb")
    async def send_mini_program_red_packet(request: Request):
        fault = await injected("sendminiprogramhb")
        if fault is not None and fault.mode == "error":
            return _fail(fault.err_code, fault.err_code_des or None)
        params, refused = signed_request(request, SEND_FIELDS)
        if refused:
            return refused
        echo = {"mch_billno": params["mch_billno"], "mch_id": params["mch_id"], "wxappid": params["wxappid"], "re_openid": params["re_openid"]}
        problem = _check_send(params, state)
        if problem:
            return _fail(*problem, **echo)
        amount = int(params["total_amount"])
        known = state.packets.get((params["mch_id"], params["mch_billno"]))
        if known is not None:
            # One bill number is one payment: the original answer, never a second payment.
            if known.re_openid != params["re_openid"] or known.total_amount != amount:
                return _fail("FATAL_ERROR", **echo)
            known.requests += 1
            return _sent(known)
        if state.balances.get(params["mch_id"], UNLIMITED_FEN) < amount:
            return _fail("NOTENOUGH", **echo, total_amount=amount)
        packet = _pay(params, amount, state)
        if fault is not None and fault.mode == "lost_answer":
            return _fail("SYSTEMERROR", **echo)
        return _sent(packet)

    @app.post("/mmpaymkttransfers/gethbinfo")
    async def red_packet_info(request: Request):
        fault = await injected("gethbinfo")
        if fault is not None and fault.mode == "error":
            return _fail(fault.err_code, fault.err_code_des or None)
        params, refused = signed_request(request, QUERY_FIELDS)
        if refused:
            return refused
        if params["bill_type"] != "MCHT":
            return _fail("PARAM_ERROR", "bill_type参数错误")
        packet = state.packets.get((params["mch_id"], params["mch_billno"]))
        if packet is None:
            return _fail("NOT_FOUND")
        return _answer(
            {
                "return_code": "SUCCESS",
                "return_msg": "OK",
                "result_code": "SUCCESS",
                "err_code": "SUCCESS",
                "err_code_des": "OK",
                "mch_billno": packet.mch_billno,
                "mch_id": packet.mch_id,
                "detail_id": packet.detail_id,
                "status": packet.status,
                "send_type": "API",
                "hb_type": "NORMAL",
                "total_num": 1,
                "total_amount": packet.total_amount,
                "send_time": packet.send_time,
                "refund_time": packet.refund_time,
                "refund_amount": packet.total_amount if packet.status == "REFUND" else None,
                "wishing": packet.wishing,
                "remark": packet.remark,
                "act_name": packet.act_name,
                "hblist": [{"openid": packet.re_openid, "amount": packet.total_amount, "rcv_time": packet.rcv_time or packet.send_time}],
            }
        )

    # ---- test hooks -------------------------------------------------------------------------

    @app.post("/__fake__/pay/faults")
    async def add_pay_fault(request: Request):
        body = request.json
        state.faults.setdefault(body["endpoint"], []).append(
            PayFault(
                mode=body.get("mode", "error"),
                err_code=body.get("err_code", "SYSTEMERROR"),
                err_code_des=body.get("err_code_des", ""),
                seconds=float(body.get("seconds", 0)),
                times=int(body.get("times", 1)),
            )
        )
        return response.json({"ok": True})

    @app.get("/__fake__/pay/ledger")
    async def pay_ledger(request: Request):
        return response.json([asdict(packet) for packet in state.packets.values()])

    @app.post("/__fake__/pay/balance")
    async def pay_balance(request: Request):
        body = request.json
        state.balances[body.get("mch_id", DEMO_WECHAT_PAY_MCH_ID)] = int(body["fen"])
        return response.json({"ok": True})

    @app.post("/__fake__/pay/packets/<bill_no>/<event:receive|refund>")
    async def pay_packet_event(request: Request, bill_no: str, event: str):
        found = [p for (_, billno), p in state.packets.items() if billno == bill_no]
        if not found:
            return response.json({}, status=404)
        packet = found[0]
        if event == "receive":
            packet.status, packet.rcv_time = "RECEIVED", _now_text()
        else:  # unclaimed for 24 hours: the money goes back to the merchant
            packet.status, packet.refund_time = "REFUND", _now_text()
            state.balances[packet.mch_id] = state.balances.get(packet.mch_id, UNLIMITED_FEN) + packet.total_amount
        return response.json(asdict(packet))

    @app.get("/__fake__/pay/calls")
    async def pay_calls(request: Request):
        return response.json(state.calls)

    @app.post("/__fake__/pay/reset")
    async def pay_reset(request: Request):
        state.packets.clear()
        state.faults.clear()
        state.balances.clear()
        state.calls.clear()
        return response.json({"ok": True})

    return state


def _check_send(params: dict[str, str], state: PayState) -> tuple[str, str] | None:
    if params["wxappid"] not in state.appids:
        return ("ILLEGAL_APPID", MESSAGES["ILLEGAL_APPID"])
    billno, mch_id = params["mch_billno"], params["mch_id"]
    # mch_id + yyyymmdd + 10 digits: 28 characters.
    if len(billno) > 28 or not billno.isdigit() or not billno.startswith(mch_id) or not _is_date(billno[len(mch_id) : len(mch_id) + 8]):
        return ("PARAM_ERROR", "mch_billno参数错误")
    if params["notify_way"] != "MINI_PROGRAM_JSAPI":
        return ("PARAM_ERROR", "notify_way参数错误")
    if params["total_num"] != "1":
        return ("PARAM_ERROR", "total_num参数错误")
    if not params["total_amount"].isdigit():
        return ("PARAM_ERROR", "total_amount参数错误")
    if len(params["re_openid"]) > 128 or len(params["send_name"]) > 32 or len(params["act_name"]) > 32:
        return ("PARAM_ERROR", "参数长度错误")
    scene = params.get("scene_id")
    if scene and scene not in SCENES:
        return ("PARAM_ERROR", "scene_id参数错误")
    low, high = SCENE_RANGE if scene else PLAIN_RANGE
    if not low <= int(params["total_amount"]) <= high:
        return ("MONEY_LIMIT", MESSAGES["MONEY_LIMIT"])
    return None


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def _pay(params: dict[str, str], amount: int, state: PayState) -> Packet:
    serial = next(state.serial)
    today = datetime.now(BEIJING).strftime("%Y%m%d")
    mch_id = params["mch_id"]
    send_id = secrets.token_hex(29)
    package = quote(f"sendid={send_id}&ver=8&sign={secrets.token_hex(64)}&mchid={mch_id}&spid={mch_id}", safe="")
    packet = Packet(
        mch_id=mch_id,
        mch_billno=params["mch_billno"],
        wxappid=params["wxappid"],
        re_openid=params["re_openid"],
        total_amount=amount,
        act_name=params["act_name"],
        wishing=params["wishing"],
        remark=params["remark"],
        send_listid=f"1000041701{today}{serial:012d}",
        detail_id=f"1000041702{today}{serial:012d}",
        package=package,
        send_time=_now_text(),
    )
    state.packets[(mch_id, packet.mch_billno)] = packet
    state.balances[mch_id] = state.balances.get(mch_id, UNLIMITED_FEN) - amount
    return packet


def _sent(packet: Packet) -> response.HTTPResponse:
    return _answer(
        {
            "return_code": "SUCCESS",
            "return_msg": MESSAGES["SUCCESS"],
            "result_code": "SUCCESS",
            "err_code": "SUCCESS",
            "err_code_des": MESSAGES["SUCCESS"],
            "mch_billno": packet.mch_billno,
            "mch_id": packet.mch_id,
            "wxappid": packet.wxappid,
            "re_openid": packet.re_openid,
            "total_amount": packet.total_amount,
            "send_listid": packet.send_listid,
            "package": packet.package,
        }
    )
