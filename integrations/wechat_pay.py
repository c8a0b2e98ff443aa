"""The WeChat Pay v2 client for mini-program red packets: wechatpy's ``WeChatPay`` (synchronous,
so every call runs in a thread), with its base URL from settings so tests and the demo talk to
``fakes.wechat_pay`` inside the fake WeChat server.

wechatpy has no wrapper for ``sendminiprogramhb``: ``pay.post(...)`` signs the parameters (MD5
over the sorted fields and the merchant key), sends them as XML and parses the XML answer,
raising when ``return_code`` or ``result_code`` is not SUCCESS.

WeChat Pay's answers are sorted here into two kinds. A *refusal* is final for this bill number
(bad parameters, an openid of another app, an amount limit, a risk refusal). Everything else —
busy, rate-limited, "accepted, ask again later", no answer in time, our merchant account short
of funds, our signature or certificate wrong — is *unavailable*: the same bill number may be sent
again, and WeChat Pay pays a bill number at most once. A configuration error is logged as an
error, since no retry fixes it until someone does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature
from wechatpy.utils import random_string

from marketing.ports import RedPacketRecord, RedPacketSent, WeChatPayRefused, WeChatPayUnavailable

log = logging.getLogger(__name__)

SEND = "mmpaymkttransfers/sendminiprogramhb"
QUERY = "mmpaymkttransfers/gethbinfo"
# The mini-program red packet is opened by the customer in the mini-program (wx.sendBizRedPacket).
NOTIFY_WAY = "MINI_PROGRAM_JSAPI"
# Required below 1 yuan and above 200 yuan, accepted always: "抽奖" (a draw) fits a campaign.
SCENE_ID = "PRODUCT_2"

# WeChat Pay's "ask again with the same bill number" answers.
RETRYABLE = {"SYSTEMERROR", "PROCESSING", "FREQ_LIMIT", "NOTENOUGH", "SENDAMOUNT_LIMIT"}
# Our side is misconfigured: retrying helps only once someone fixes it.
CONFIGURATION = {"SIGN_ERROR", "CA_ERROR", "XML_ERROR", "API_METHOD_CLOSED", "ILLEGAL_APPID", "MSGAPPID_ERROR"}
NOT_FOUND = "NOT_FOUND"
THREADS = 8


class WeChatpyPay:
    def __init__(
        self,
        *,
        mch_id: str,
        api_key: str,
        appid: str,
        base_url: str,
        timeout: float,
        send_name: str,
        cert: str | None = None,
        cert_key: str | None = None,
        threads: int = THREADS,
    ):
        self.mch_id = mch_id
        self.appid = appid
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._send_name = send_name
        self._cert, self._cert_key = cert, cert_key
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wechat-pay")
        self._threads = threading.local()

    # ---- the API ------------------------------------------------------------------------------

    async def send_mini_program_red_packet(
        self, *, bill_no: str, openid: str, amount_fen: int, act_name: str, wishing: str, remark: str
    ) -> RedPacketSent:
        data = {
            "mch_billno": bill_no,
            "wxappid": self.appid,
            "send_name": self._send_name,
            "re_openid": openid,
            "total_amount": int(amount_fen),
            "total_num": 1,
            "wishing": wishing[:128],
            "act_name": act_name[:32],
            "remark": remark[:256],
            "notify_way": NOTIFY_WAY,
            "scene_id": SCENE_ID,
        }
        result = await self._call(SEND, data, bill_no=bill_no)
        return RedPacketSent(
            bill_no=result["mch_billno"],
            send_listid=result.get("send_listid") or "",
            amount_fen=int(result["total_amount"]),
            package=result.get("package") or "",
        )

    async def red_packet_record(self, bill_no: str) -> RedPacketRecord | None:
        data = {"mch_billno": bill_no, "bill_type": "MCHT", "appid": self.appid}
        try:
            result = await self._call(QUERY, data, bill_no=bill_no)
        except WeChatPayRefused as refused:
            if refused.code == NOT_FOUND:
                return None
            raise
        receiver = _first(result.get("hblist"))
        return RedPacketRecord(
            bill_no=result["mch_billno"],
            status=result["status"],
            amount_fen=int(result["total_amount"]),
            openid=receiver.get("openid") if receiver else None,
            detail_id=result.get("detail_id"),
            reason=result.get("reason"),
        )

    def open_packet_params(self, package: str) -> dict:
        """The parameters of ``wx.sendBizRedPacket``: paySign is MD5 over appId, nonceStr, package
        and timeStamp with the merchant key, as WeChat Pay documents it."""
        params = {"appId": self.appid, "timeStamp": str(int(time.time())), "nonceStr": random_string(32), "package": package}
        sign = calculate_signature(params, self._api_key)
        return {"timeStamp": params["timeStamp"], "nonceStr": params["nonceStr"], "package": package, "signType": "MD5", "paySign": sign}

    # ---- plumbing -----------------------------------------------------------------------------

    def _client(self) -> WeChatPay:
        # One client per thread, so its requests.Session keeps connections to WeChat Pay alive.
        client = getattr(self._threads, "client", None)
        if client is None:
            client = WeChatPay(
                appid=self.appid,
                api_key=self._api_key,
                mch_id=self.mch_id,
                mch_cert=self._cert,
                mch_key=self._cert_key,
                timeout=self._timeout,
            )
            client.API_BASE_URL = self._base_url
            self._threads.client = client
        return client

    async def _call(self, endpoint: str, data: dict, *, bill_no: str) -> dict:
        loop = asyncio.get_running_loop()
        try:
            # A copy: wechatpy adds mch_id and nonce_str to the dict it is given.
            result = await loop.run_in_executor(self._executor, lambda: self._client().post(endpoint, data=dict(data)))
        except WeChatPayException as exc:
            raise _classified(exc, endpoint, bill_no) from None
        except requests.RequestException:
            raise WeChatPayUnavailable(None, "WeChat Pay did not answer in time") from None
        if not isinstance(result, dict):
            # wechatpy hands back the raw text when it is not XML (a proxy's error page, say).
            raise WeChatPayUnavailable(None, "WeChat Pay's answer was not XML")
        return result


def _classified(exc: WeChatPayException, endpoint: str, bill_no: str) -> Exception:
    code = exc.errcode
    message = exc.errmsg or exc.return_msg or ""
    if exc.return_code is None:  # an HTTP error status: no WeChat Pay answer at all
        return WeChatPayUnavailable(None, "WeChat Pay answered with an HTTP error")
    if code is None:
        # return_code FAIL with no err_code: a communication-level refusal (e.g. a bad signature on
        # the older APIs). Nothing was done for this bill.
        code = "SIGN_ERROR" if "签名" in message else "SYSTEMERROR"
    extra = {"endpoint": endpoint, "wechat_pay_code": code, "bill_no": bill_no}
    if code in CONFIGURATION:
        log.error("wechat pay refused our configuration", extra=extra)
        return WeChatPayUnavailable(code, message)
    if code in RETRYABLE:
        log.warning("wechat pay asks to try again", extra=extra)
        return WeChatPayUnavailable(code, message)
    if code != NOT_FOUND:
        log.info("wechat pay refused", extra=extra)
    return WeChatPayRefused(code, message)


def _first(hblist) -> dict | None:
    """xmltodict gives one ``hbinfo`` as a dict and several as a list."""
    if not isinstance(hblist, dict):
        return None
    info = hblist.get("hbinfo")
    if isinstance(info, list):
        return info[0] if info else None
    return info if isinstance(info, dict) else None
