"""WeChat Pay v2 red packets: the fake against WeChat Pay's documented protocol (raw HTTP, no
wechatpy), then our wechatpy client against the fake.

The examples are written down from WeChat Pay's v2 documentation (pay.weixin.qq.com, 现金红包 /
小程序红包: 发放小程序红包, 查询红包记录, and the 签名算法 page). XML carries text, so shapes are
compared as key sets; the signature is checked against the documented worked example.
"""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest

from fakes.wechat_pay import DEFAULT_MERCHANTS, parse_xml, sign, to_xml
from infra.settings import DEMO_WECHAT_PAY_MCH_ID, DEV_WECHAT_PAY_API_KEY
from integrations.wechat_pay import WeChatpyPay
from marketing.payouts import bill_number
from marketing.ports import WeChatPayRefused, WeChatPayUnavailable

APPID = "wx0000000000demo"
MCH_ID, KEY = DEMO_WECHAT_PAY_MCH_ID, DEV_WECHAT_PAY_API_KEY

# 签名算法: the worked example (parameters, key and the resulting sign) of the documentation.
SIGN_EXAMPLE = (
    {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test", "nonce_str": "ibuaiVcKdpRxkhJA"},
    "192006250b4c09247ec02edce69f6a2d",
    "9A0A8659F005D6984697E2CA0A9CF3B7",
)

# 发放小程序红包 (sendminiprogramhb): the answer on success.
SEND_OK = {
    "return_code": "SUCCESS",
    "return_msg": "发放成功",
    "result_code": "SUCCESS",
    "err_code": "SUCCESS",
    "err_code_des": "发放成功",
    "mch_billno": "0010010404201411170000046545",
    "mch_id": "10010404",
    "wxappid": "wx6fa7e3bab7e15415",
    "re_openid": "onqOjjmM1tad-3ROpncN-yUfa6uI",
    "total_amount": "1",
    "send_listid": "100000000020150520314766074200",
    "package": "sendid%3D242e8abd163d300019b2cae74ba8e8c06e3f0e51ab84d16b3c80decd22a5b672%26ver%3D8%26sign%3D4110d6",
}
# A refused signature: a communication-level failure.
SIGN_REFUSED = {"return_code": "FAIL", "return_msg": "签名错误", "result_code": "FAIL", "err_code": "SIGN_ERROR", "err_code_des": "签名错误"}
# 查询红包记录 (gethbinfo): a packet and the one who received it.
QUERY_OK_KEYS = {
    "return_code", "return_msg", "result_code", "err_code", "err_code_des", "mch_billno", "mch_id", "detail_id",
    "status", "send_type", "hb_type", "total_num", "total_amount", "send_time", "wishing", "remark", "act_name", "hblist",
}
HBINFO_KEYS = {"openid", "amount", "rcv_time"}
QUERY_NOT_FOUND = {"return_code": "SUCCESS", "result_code": "FAIL", "err_code": "NOT_FOUND", "err_code_des": "指定单号数据不存在"}

_serial = iter(range(1, 10**6))


def new_bill() -> str:
    # Unique within the session's fake, whatever else pays into it.
    return bill_number(MCH_ID, date.today(), int(uuid.uuid4().int % 10**9) * 10 + next(_serial) % 10 + 1)


def send_params(bill: str | None = None, **overrides) -> dict:
    params = {
        "mch_billno": bill or new_bill(),
        "mch_id": MCH_ID,
        "wxappid": APPID,
        "send_name": "农商银行",
        "re_openid": f"o{uuid.uuid4().hex}",
        "total_amount": "188",
        "total_num": "1",
        "wishing": "恭喜发财",
        "act_name": "邀请有礼",
        "remark": "活动说明",
        "notify_way": "MINI_PROGRAM_JSAPI",
        "scene_id": "PRODUCT_2",
        "nonce_str": uuid.uuid4().hex,
    }
    params.update(overrides)
    return params


def signed(params: dict, key: str = KEY) -> bytes:
    return to_xml({**params, "sign": sign(params, key)}).encode()


@pytest.fixture
async def http(fake_wechat):
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as client:
        await client.post("__fake__/pay/reset")
        yield client


async def post(http, endpoint: str, body: bytes) -> dict:
    response = await http.post(f"mmpaymkttransfers/{endpoint}", content=body, headers={"Content-Type": "text/xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    return parse_xml(response.content)


async def ledger(http) -> list[dict]:
    return (await http.get("__fake__/pay/ledger")).json()


# ---- the fake speaks WeChat Pay ----------------------------------------------------------------


def test_the_signature_is_the_documented_one():
    params, key, expected = SIGN_EXAMPLE
    assert sign(params, key) == expected
    # Empty values and the sign itself are left out.
    assert sign({**params, "attach": "", "sign": "X"}, key) == expected


async def test_a_red_packet_is_paid_and_answered_as_documented(http):
    params = send_params()
    answer = await post(http, "sendminiprogramhb", signed(params))

    assert set(answer) == set(SEND_OK)
    assert answer["result_code"] == "SUCCESS" and answer["mch_billno"] == params["mch_billno"]
    assert answer["total_amount"] == "188" and answer["re_openid"] == params["re_openid"]
    assert answer["package"].startswith("sendid%3D")
    assert [(p["mch_billno"], p["total_amount"], p["requests"]) for p in await ledger(http)] == [(params["mch_billno"], 188, 1)]


async def test_a_bad_signature_is_refused_and_pays_nothing(http):
    body = signed(send_params(), key="not-the-merchant-key-000000000000")
    answer = await post(http, "sendminiprogramhb", body)

    assert answer == SIGN_REFUSED
    assert await ledger(http) == []


async def test_a_tampered_request_fails_its_signature(http):
    params = send_params()
    original = signed(params)
    body = original.replace(b"<total_amount><![CDATA[188]]></total_amount>", b"<total_amount>20000</total_amount>")
    assert body != original
    assert (await post(http, "sendminiprogramhb", body))["err_code"] == "SIGN_ERROR"


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"mch_billno": "19000001092024"}, "PARAM_ERROR"),  # not mch_id + yyyymmdd + 10 digits
        ({"mch_billno": "1900000109202413450000000001"}, "PARAM_ERROR"),  # no 13th month
        ({"notify_way": "MP_MSG"}, "PARAM_ERROR"),
        ({"total_num": "2"}, "PARAM_ERROR"),
        ({"total_amount": "29"}, "MONEY_LIMIT"),  # below 0.30 yuan even with a scene
        ({"total_amount": "50", "scene_id": ""}, "MONEY_LIMIT"),  # below 1 yuan needs a scene
        ({"wxappid": "wx_some_other_app"}, "ILLEGAL_APPID"),
    ],
)
async def test_bad_parameters_are_refused_with_the_documented_codes(http, overrides, code):
    answer = await post(http, "sendminiprogramhb", signed(send_params(**overrides)))

    assert (answer["return_code"], answer["result_code"], answer["err_code"]) == ("SUCCESS", "FAIL", code)
    assert await ledger(http) == []


async def test_a_missing_field_is_refused(http):
    params = send_params()
    del params["re_openid"]
    answer = await post(http, "sendminiprogramhb", signed(params))
    assert (answer["return_code"], answer["err_code"]) == ("FAIL", "PARAM_ERROR")


async def test_a_repeated_bill_number_gets_the_original_answer_and_pays_once(http):
    params = send_params()
    first = await post(http, "sendminiprogramhb", signed(params))
    again = await post(http, "sendminiprogramhb", signed({**params, "nonce_str": uuid.uuid4().hex}))

    assert again == first
    assert [(p["mch_billno"], p["requests"]) for p in await ledger(http)] == [(params["mch_billno"], 2)]


async def test_a_repeated_bill_number_with_other_terms_is_a_fatal_error(http):
    params = send_params()
    await post(http, "sendminiprogramhb", signed(params))
    answer = await post(http, "sendminiprogramhb", signed({**params, "total_amount": "999"}))

    assert answer["err_code"] == "FATAL_ERROR"
    assert [p["total_amount"] for p in await ledger(http)] == [188]


async def test_not_enough_money_pays_nothing_until_the_merchant_tops_up(http):
    params = send_params()
    await http.post("__fake__/pay/balance", json={"mch_id": MCH_ID, "fen": 100})
    assert (await post(http, "sendminiprogramhb", signed(params)))["err_code"] == "NOTENOUGH"
    assert await ledger(http) == []

    await http.post("__fake__/pay/balance", json={"mch_id": MCH_ID, "fen": 10_000})
    assert (await post(http, "sendminiprogramhb", signed(params)))["result_code"] == "SUCCESS"
    assert len(await ledger(http)) == 1


async def test_the_record_of_a_packet_is_answered_as_documented(http):
    params = send_params()
    await post(http, "sendminiprogramhb", signed(params))
    query = {"mch_billno": params["mch_billno"], "mch_id": MCH_ID, "appid": APPID, "bill_type": "MCHT", "nonce_str": uuid.uuid4().hex}

    record = await post(http, "gethbinfo", signed(query))
    assert QUERY_OK_KEYS <= set(record)
    assert (record["status"], record["total_amount"], record["send_type"]) == ("SENT", "188", "API")
    hblist = (await http.post("mmpaymkttransfers/gethbinfo", content=signed(query))).text
    assert all(f"<{key}>" in hblist for key in HBINFO_KEYS)

    await http.post(f"__fake__/pay/packets/{params['mch_billno']}/receive")
    assert (await post(http, "gethbinfo", signed(query)))["status"] == "RECEIVED"

    unknown = await post(http, "gethbinfo", signed({**query, "mch_billno": new_bill()}))
    assert {key: unknown[key] for key in QUERY_NOT_FOUND} == QUERY_NOT_FOUND

    assert (await post(http, "gethbinfo", signed(query, key="x" * 32)))["err_code"] == "SIGN_ERROR"


# ---- our client through wechatpy ---------------------------------------------------------------


@pytest.fixture
def pay(fake_wechat) -> WeChatpyPay:
    return client_for(fake_wechat)


def client_for(base_url: str, *, api_key: str = KEY, timeout: float = 2.0) -> WeChatpyPay:
    return WeChatpyPay(mch_id=MCH_ID, api_key=api_key, appid=APPID, base_url=base_url, timeout=timeout, send_name="农商银行")


async def send(pay: WeChatpyPay, bill: str, amount_fen: int = 520, openid: str = "oOpenidOfTheCustomer"):
    return await pay.send_mini_program_red_packet(bill_no=bill, openid=openid, amount_fen=amount_fen, act_name="邀请有礼", wishing="恭喜发财", remark="备注")


async def test_the_client_sends_a_red_packet_and_reads_its_record(http, pay):
    bill = new_bill()
    sent = await send(pay, bill)

    assert (sent.bill_no, sent.amount_fen) == (bill, 520)
    assert sent.send_listid and sent.package
    record = await pay.red_packet_record(bill)
    assert (record.status, record.amount_fen, record.openid) == ("SENT", 520, "oOpenidOfTheCustomer")
    assert await pay.red_packet_record(new_bill()) is None


async def test_the_client_sends_a_bill_number_twice_and_pays_once(http, pay):
    bill = new_bill()
    first, again = await send(pay, bill), await send(pay, bill)

    assert again == first
    assert [p["requests"] for p in await ledger(http)] == [2]


@pytest.mark.parametrize("code", ["SYSTEMERROR", "FREQ_LIMIT", "NOTENOUGH", "PROCESSING"])
async def test_try_again_answers_are_unavailable(http, pay, code):
    await http.post("__fake__/pay/faults", json={"endpoint": "sendminiprogramhb", "err_code": code})
    with pytest.raises(WeChatPayUnavailable) as raised:
        await send(pay, new_bill())
    assert raised.value.code == code


@pytest.mark.parametrize("code", ["PARAM_ERROR", "MONEY_LIMIT", "OPENID_ERROR", "NO_AUTH", "FATAL_ERROR"])
async def test_final_answers_are_refusals(http, pay, code):
    await http.post("__fake__/pay/faults", json={"endpoint": "sendminiprogramhb", "err_code": code})
    with pytest.raises(WeChatPayRefused) as raised:
        await send(pay, new_bill())
    assert raised.value.code == code


async def test_a_wrong_merchant_key_is_a_configuration_problem_not_a_refusal(http, fake_wechat):
    with pytest.raises(WeChatPayUnavailable) as raised:
        await send(client_for(fake_wechat, api_key="k" * 32), new_bill())
    assert raised.value.code == "SIGN_ERROR"
    assert await ledger(http) == []


async def test_a_lost_answer_is_unavailable_and_the_retry_gets_the_payment_made(http, pay):
    bill = new_bill()
    await http.post("__fake__/pay/faults", json={"endpoint": "sendminiprogramhb", "mode": "lost_answer"})
    with pytest.raises(WeChatPayUnavailable):
        await send(pay, bill)

    again = await send(pay, bill)
    assert again.bill_no == bill
    assert [(p["mch_billno"], p["requests"]) for p in await ledger(http)] == [(bill, 2)]


async def test_a_timeout_is_unavailable(http, fake_wechat):
    await http.post("__fake__/pay/faults", json={"endpoint": "sendminiprogramhb", "mode": "delay", "seconds": 1.0})
    with pytest.raises(WeChatPayUnavailable) as raised:
        await send(client_for(fake_wechat, timeout=0.3), new_bill())
    assert raised.value.code is None


def test_open_packet_params_are_signed_with_the_merchant_key(fake_wechat):
    params = client_for(fake_wechat).open_packet_params("sendid%3Dabc")
    expected = sign({"appId": APPID, "timeStamp": params["timeStamp"], "nonceStr": params["nonceStr"], "package": "sendid%3Dabc"}, KEY)
    assert params["paySign"] == expected and params["signType"] == "MD5"


def test_the_demo_merchant_is_known_to_the_fake():
    assert DEFAULT_MERCHANTS[MCH_ID] == KEY
