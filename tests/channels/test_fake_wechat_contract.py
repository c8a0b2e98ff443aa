"""The fake WeChat server against WeChat's documented answers, not against our client.

The examples below are written down from WeChat's official server API documentation
(developers.weixin.qq.com, mini-program "服务端 API"). Each test sends raw HTTP to the fake (httpx,
no wechatpy) and compares the answer's keys and value types with the documented example, and
checks the request side: the fake must refuse what WeChat refuses.

Expiring access tokens touches every caller of a fake, so that test runs on a private fake.
"""

from __future__ import annotations

import base64
import io
from uuid import uuid4

import httpx
import pytest
from PIL import Image

from fakes.wechat import DEFAULT_APPS, DEFAULT_TEMPLATES, openid_for, unionid_for
from tests.support import fake_wechat_process

APPID, SECRET = next(iter(DEFAULT_APPS.items()))
TEMPLATE = sorted(DEFAULT_TEMPLATES)[0]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# ---- recorded examples from the official documentation ----------------------------------------

# auth.code2Session (GET /sns/jscode2session); unionid only when the app is bound to an open platform account.
CODE2SESSION_OK = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "session_key": "tiihtNczf5v6AKRyjwEUhQ==", "unionid": "oRbBJ0SjC9LmF9Hi5bZ6QKo4xg2Y"}
CODE2SESSION_INVALID_CODE = {"errcode": 40029, "errmsg": "invalid code"}
CODE2SESSION_CODE_USED = {"errcode": 40163, "errmsg": "code been used"}

# auth.getAccessToken (GET /cgi-bin/token).
ACCESS_TOKEN_OK = {"access_token": "ACCESS_TOKEN", "expires_in": 7200}
ACCESS_TOKEN_INVALID_APPID = {"errcode": 40013, "errmsg": "invalid appid"}
ACCESS_TOKEN_INVALID_SECRET = {"errcode": 40125, "errmsg": "invalid appsecret"}
ACCESS_TOKEN_INVALID_GRANT = {"errcode": 40002, "errmsg": "invalid grant_type"}

# phonenumber.getPhoneNumber (POST /wxa/business/getuserphonenumber). The documented example shows
# "countryCode": 86, but the field table of the same page types it as string, and WeChat answers
# "86" (a known error of the example, raised on the developers' community); the table wins here.
PHONE_NUMBER_OK = {
    "errcode": 0,
    "errmsg": "ok",
    "phone_info": {
        "phoneNumber": "xxxxxx",
        "purePhoneNumber": "xxxxxx",
        "countryCode": 86,
        "watermark": {"timestamp": 1637744274, "appid": "xxxx"},
    },
}
PHONE_NUMBER_FIELD_TYPES = {("phone_info", "countryCode"): "string"}

# subscribeMessage.send (POST /cgi-bin/message/subscribe/send).
SUBSCRIBE_SEND_OK = {"errcode": 0, "errmsg": "ok", "msgid": 2843542362185908225}
SUBSCRIBE_SEND_REFUSED = {"errcode": 43101, "errmsg": "user refuse to accept the msg"}

# Errors common to every API called with an access token.
ACCESS_TOKEN_MISSING = {"errcode": 41001, "errmsg": "access_token missing"}
ACCESS_TOKEN_INVALID = {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
ACCESS_TOKEN_EXPIRED = {"errcode": 42001, "errmsg": "access_token expired"}

# wxacode.getUnlimited (POST /wxa/getwxacodeunlimit): the image itself on success, JSON on failure.
WXACODE_INVALID_PAGE = {"errcode": 41030, "errmsg": "invalid page"}
WXACODE_INVALID_ARGS = {"errcode": 40097, "errmsg": "invalid args"}


# ---- comparing shapes ---------------------------------------------------------------------------


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def shape(value, overrides: dict[tuple, str] | None = None, path: tuple = ()):
    """Keys and JSON value types, at every depth; ``overrides`` types a path as the field table does."""
    overrides = overrides or {}
    if path in overrides:
        return overrides[path]
    if isinstance(value, dict):
        return {key: shape(item, overrides, path + (key,)) for key, item in value.items()}
    return _kind(value)


def assert_same_shape(actual: dict, documented: dict, overrides: dict[tuple, str] | None = None) -> None:
    assert shape(actual) == shape(documented, overrides)


def assert_documented_error(body: dict, documented: dict) -> None:
    """Same keys and types, same errcode; the message starts as documented and ends, as WeChat's
    do, with the request id (" rid: ...")."""
    assert_same_shape(body, documented)
    assert body["errcode"] == documented["errcode"]
    message, separator, request_id = body["errmsg"].partition(" rid: ")
    assert separator, f"no ' rid: ' in {body['errmsg']!r}"
    assert message.startswith(documented["errmsg"])
    assert request_id.strip()


# ---- talking to the fake ------------------------------------------------------------------------


@pytest.fixture
async def http(fake_wechat):
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def private_fake() -> str:
    """A fake of this module's own: its tokens can be expired without touching other tests."""
    with fake_wechat_process() as url:
        yield url


async def get_token(http: httpx.AsyncClient, **params) -> httpx.Response:
    query = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, **params}
    return await http.get("cgi-bin/token", params=query)


async def access_token(http: httpx.AsyncClient) -> str:
    response = await get_token(http)
    return response.json()["access_token"]


async def code2session(http: httpx.AsyncClient, code: str, **params) -> httpx.Response:
    query = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code", **params}
    return await http.get("sns/jscode2session", params=query)


def login_code(user: str) -> str:
    return f"{user}.{uuid4().hex[:8]}"


def new_user(prefix: str = "c") -> str:
    return f"{prefix}{uuid4().hex[:10]}"


# ---- auth.code2Session --------------------------------------------------------------------------


async def test_code2session_success_has_the_documented_shape(http):
    user = new_user()
    response = await code2session(http, login_code(user))

    assert response.status_code == 200
    body = response.json()
    assert_same_shape(body, CODE2SESSION_OK)
    assert body["openid"] == openid_for(APPID, user) and body["unionid"] == unionid_for(user)
    assert len(base64.b64decode(body["session_key"])) == 16


async def test_code2session_without_an_open_platform_binding_has_no_unionid(http):
    body = (await code2session(http, login_code(new_user("nounion-")))).json()

    assert set(body) == set(CODE2SESSION_OK) - {"unionid"}


async def test_an_invalid_code_is_the_documented_error(http):
    response = await code2session(http, "no dot, no user")

    assert response.status_code == 200  # WeChat answers errors with HTTP 200
    assert_documented_error(response.json(), CODE2SESSION_INVALID_CODE)


async def test_a_used_code_is_the_documented_error(http):
    code = login_code(new_user())
    assert "openid" in (await code2session(http, code)).json()

    assert_documented_error((await code2session(http, code)).json(), CODE2SESSION_CODE_USED)


@pytest.mark.parametrize(
    "params, documented",
    [
        ({"grant_type": "client_credential"}, ACCESS_TOKEN_INVALID_GRANT),
        ({"appid": "wx9999999999none"}, ACCESS_TOKEN_INVALID_APPID),
        ({"secret": "not-the-secret"}, ACCESS_TOKEN_INVALID_SECRET),
    ],
)
async def test_code2session_refuses_wrong_credentials(http, params, documented):
    response = await code2session(http, login_code(new_user()), **params)

    assert_documented_error(response.json(), documented)


# ---- auth.getAccessToken ------------------------------------------------------------------------


async def test_an_access_token_has_the_documented_shape(http):
    body = (await get_token(http)).json()

    assert_same_shape(body, ACCESS_TOKEN_OK)
    assert body["expires_in"] == 7200
    assert 0 < len(body["access_token"]) <= 512  # documented: keep at least 512 characters of room


@pytest.mark.parametrize(
    "params, documented",
    [
        ({"grant_type": "authorization_code"}, ACCESS_TOKEN_INVALID_GRANT),
        ({"grant_type": ""}, ACCESS_TOKEN_INVALID_GRANT),
        ({"appid": "wx9999999999none"}, ACCESS_TOKEN_INVALID_APPID),
        ({"secret": "not-the-secret"}, ACCESS_TOKEN_INVALID_SECRET),
        ({"secret": ""}, ACCESS_TOKEN_INVALID_SECRET),
    ],
)
async def test_a_token_request_with_wrong_parameters_is_refused(http, params, documented):
    response = await get_token(http, **params)

    assert response.status_code == 200
    assert_documented_error(response.json(), documented)


# ---- the access token on the APIs that need one ------------------------------------------------


async def test_a_missing_access_token_is_41001(http):
    response = await http.post("wxa/business/getuserphonenumber", json={"code": f"13912345678.{uuid4().hex[:8]}"})

    assert_documented_error(response.json(), ACCESS_TOKEN_MISSING)


async def test_an_unknown_access_token_is_40001(http):
    response = await http.post(
        "wxa/business/getuserphonenumber", params={"access_token": "not-a-token"}, json={"code": f"13912345678.{uuid4().hex[:8]}"}
    )

    assert_documented_error(response.json(), ACCESS_TOKEN_INVALID)


async def test_an_expired_access_token_is_42001_and_a_new_one_works(private_fake):
    async with httpx.AsyncClient(base_url=private_fake, timeout=10) as http:
        token = await access_token(http)
        assert (await http.post("__fake__/expire-tokens")).json()["expired"] >= 1

        expired = await http.post(
            "wxa/business/getuserphonenumber", params={"access_token": token}, json={"code": f"13912345678.{uuid4().hex[:8]}"}
        )
        fresh = await http.post(
            "wxa/business/getuserphonenumber",
            params={"access_token": await access_token(http)},
            json={"code": f"13912345678.{uuid4().hex[:8]}"},
        )

    assert_documented_error(expired.json(), ACCESS_TOKEN_EXPIRED)
    assert fresh.json()["errcode"] == 0


# ---- phonenumber.getPhoneNumber -----------------------------------------------------------------


async def test_a_phone_number_has_the_documented_shape(http):
    response = await http.post(
        "wxa/business/getuserphonenumber", params={"access_token": await access_token(http)}, json={"code": f"13912345678.{uuid4().hex[:8]}"}
    )

    body = response.json()
    assert_same_shape(body, PHONE_NUMBER_OK, PHONE_NUMBER_FIELD_TYPES)
    assert body["phone_info"]["purePhoneNumber"] == "13912345678"
    assert body["phone_info"]["countryCode"] == "86"
    assert body["phone_info"]["watermark"]["appid"] == APPID


@pytest.mark.parametrize("body", [{"code": "not-a-phone-code"}, {}, {"code": ""}])
async def test_a_bad_phone_code_is_the_documented_error(http, body):
    response = await http.post("wxa/business/getuserphonenumber", params={"access_token": await access_token(http)}, json=body)

    assert_documented_error(response.json(), CODE2SESSION_INVALID_CODE)


# ---- subscribeMessage.send ----------------------------------------------------------------------


async def _subscriber(http, prefix: str = "c") -> str:
    user = new_user(prefix)
    return (await code2session(http, login_code(user))).json()["openid"]


def message_to(openid: str, **extra) -> dict:
    return {"touser": openid, "template_id": TEMPLATE, "page": "pages/index/index", "data": {"thing1": {"value": "经营贷"}}, **extra}


async def send(http, body: dict) -> httpx.Response:
    return await http.post("cgi-bin/message/subscribe/send", params={"access_token": await access_token(http)}, json=body)


async def test_a_sent_subscribe_message_has_the_documented_shape_and_is_recorded(http):
    openid = await _subscriber(http)

    body = (await send(http, message_to(openid))).json()

    assert_same_shape(body, SUBSCRIBE_SEND_OK)
    assert body["errcode"] == 0
    recorded = [m for m in (await http.get("__fake__/messages")).json() if m["touser"] == openid]
    assert [m["msgid"] for m in recorded] == [body["msgid"]]


async def test_a_user_who_refused_subscribe_messages_is_43101(http):
    openid = await _subscriber(http, "refuse-")

    assert_documented_error((await send(http, message_to(openid))).json(), SUBSCRIBE_SEND_REFUSED)
    assert not [m for m in (await http.get("__fake__/messages")).json() if m["touser"] == openid]


@pytest.mark.parametrize(
    "change, errcode",
    [
        ({"touser": "oNobodyEverSignedInHere000000"}, 40003),
        ({"template_id": "tmpl-not-ours"}, 40037),
        ({"data": {}}, 47003),
        ({"data": {"thing1": {"value": "  "}}}, 47003),
        ({"data": {"thing1": "no value object"}}, 47003),
    ],
)
async def test_a_subscribe_message_wechat_would_refuse_is_refused(http, change, errcode):
    openid = await _subscriber(http)

    body = (await send(http, message_to(openid, **change))).json()

    assert body["errcode"] == errcode
    assert set(body) == {"errcode", "errmsg"} and " rid: " in body["errmsg"]


# ---- wxacode.getUnlimited -----------------------------------------------------------------------


async def wxacode(http, body: dict) -> httpx.Response:
    return await http.post("wxa/getwxacodeunlimit", params={"access_token": await access_token(http)}, json=body)


async def test_an_unlimited_code_is_a_real_png(http):
    response = await wxacode(http, {"scene": "r=AB12cd34", "page": "pages/index/index", "width": 430})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/")
    assert response.content.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(response.content))
    image.verify()
    assert image.format == "PNG"
    assert min(image.size) >= 280  # documented minimum width


async def test_a_32_character_scene_is_accepted(http):
    response = await wxacode(http, {"scene": "s" * 32, "page": "pages/index/index"})

    assert response.content.startswith(PNG_MAGIC)


async def test_a_scene_longer_than_32_characters_is_refused_as_json(http):
    response = await wxacode(http, {"scene": "s" * 33, "page": "pages/index/index"})

    assert not response.content.startswith(PNG_MAGIC)
    body = response.json()
    assert set(body) == {"errcode", "errmsg"} and " rid: " in body["errmsg"]
    assert body["errcode"] in (WXACODE_INVALID_ARGS["errcode"], 40169)


async def test_a_scene_longer_than_32_characters_is_wechats_own_40169(http):
    body = (await wxacode(http, {"scene": "s" * 33, "page": "pages/index/index"})).json()

    assert body["errcode"] == 40169


async def test_a_page_with_a_leading_slash_is_the_documented_error(http):
    response = await wxacode(http, {"scene": "r=1", "page": "/pages/index/index"})

    assert_documented_error(response.json(), WXACODE_INVALID_PAGE)


async def test_an_unlimited_code_without_a_token_is_json_not_an_image(http):
    response = await http.post("wxa/getwxacodeunlimit", json={"scene": "r=1", "page": "pages/index/index"})

    assert_documented_error(response.json(), ACCESS_TOKEN_MISSING)
