"""Our WeChat client (integrations.wechat.WeChatpyMiniProgram, wechatpy underneath) against the
fake WeChat server, without the HTTP API: the access token shared through Redis, its refresh when
WeChat rejects it, life without Redis, no stampede on the token endpoint, and the mapping of
WeChat's answers to WeChatRefused / WeChatUnavailable.

Tests that expire every token of a fake use a private one, so the session's fake stays usable.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
from uuid import uuid4

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from PIL import Image
from redis import asyncio as redis_asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from channels.ports import WeChatRefused, WeChatSession, WeChatUnavailable
from fakes.wechat import openid_for, unionid_for
from integrations.wechat import WeChatpyMiniProgram
from tests.support import fake_wechat_process, free_port

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_fake() -> str:
    """A fake of this module's own: expiring its tokens touches no other test."""
    with fake_wechat_process() as url:
        yield url


def mini_program(settings, redis, *, base_url: str | None = None, secret: str | None = None, timeout: float = 2.0) -> WeChatpyMiniProgram:
    return WeChatpyMiniProgram(
        appid=settings.wechat_appid,
        secret=secret or settings.wechat_secret,
        base_url=base_url or settings.wechat_api_base,
        timeout=timeout,
        redis=redis,
        key_prefix=redis.test_prefix,
    )


def token_key(settings, redis) -> str:
    return f"{redis.test_prefix}wechat:token:{settings.wechat_appid}"


async def calls(fake: str, endpoint: str) -> int:
    async with httpx.AsyncClient(base_url=fake, timeout=10) as http:
        return (await http.get("__fake__/calls")).json().get(endpoint, 0)


async def inject_fault(fake: str, endpoint: str, **fault) -> None:
    async with httpx.AsyncClient(base_url=fake, timeout=10) as http:
        assert (await http.post("__fake__/faults", json={"endpoint": endpoint, **fault})).status_code == 200


async def expire_tokens(fake: str) -> None:
    async with httpx.AsyncClient(base_url=fake, timeout=10) as http:
        assert (await http.post("__fake__/expire-tokens")).status_code == 200


async def cached_token(settings, redis) -> str | None:
    value = await redis.get(token_key(settings, redis))
    return value.decode() if isinstance(value, bytes) else value


def new_user(prefix: str = "k") -> str:
    return f"{prefix}{uuid4().hex[:10]}"


def login_code(user: str) -> str:
    return f"{user}.{uuid4().hex[:8]}"


def new_phone() -> str:
    return "158" + f"{uuid4().int % 10**8:08d}"


def phone_code(phone: str) -> str:
    return f"{phone}.{uuid4().hex[:8]}"


def redis_that_is_down():
    # Port 1: nothing listens; no retries, so each attempt fails at once.
    return redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


# ---- the access token, shared through Redis -----------------------------------------------------


async def test_the_token_is_fetched_once_and_shared_through_redis(settings, redis, fake_wechat):
    first, second = mini_program(settings, redis), mini_program(settings, redis)
    before = await calls(fake_wechat, "token")

    phones = [new_phone(), new_phone()]
    assert await first.phone_number(phone_code(phones[0])) == phones[0]
    assert await second.phone_number(phone_code(phones[1])) == phones[1]
    assert await first.phone_number(phone_code(phones[1])) == phones[1]

    assert await calls(fake_wechat, "token") == before + 1
    shared = await cached_token(settings, redis)
    assert shared and shared == await second.access_token()
    # Kept a little less than WeChat's 7200 s, so it is refreshed before it expires.
    assert 0 < await redis.ttl(token_key(settings, redis)) < 7200


async def test_an_expired_token_is_dropped_and_the_call_retried_with_a_fresh_one(settings, redis, private_fake):
    client = mini_program(settings, redis, base_url=private_fake)
    await client.phone_number(phone_code(new_phone()))
    stale = await cached_token(settings, redis)
    tokens_before = await calls(private_fake, "token")
    await expire_tokens(private_fake)

    phone = new_phone()
    assert await client.phone_number(phone_code(phone)) == phone

    assert await calls(private_fake, "token") == tokens_before + 1
    fresh = await cached_token(settings, redis)
    assert fresh and fresh != stale


async def test_a_token_wechat_calls_invalid_is_replaced(settings, redis, fake_wechat):
    client = mini_program(settings, redis)
    await redis.set(token_key(settings, redis), "not-a-token-wechat-knows", ex=600)
    tokens_before = await calls(fake_wechat, "token")

    phone = new_phone()
    assert await client.phone_number(phone_code(phone)) == phone

    assert await calls(fake_wechat, "token") == tokens_before + 1
    assert await cached_token(settings, redis) not in (None, "not-a-token-wechat-knows")


async def test_a_newer_token_of_another_worker_is_not_dropped(settings, redis, fake_wechat):
    """Only the token WeChat rejected is forgotten: a newer one another worker cached stays."""
    client = mini_program(settings, redis)
    good = await mini_program(settings, redis).access_token()
    await client._forget("some-older-token")

    assert await cached_token(settings, redis) == good


async def test_a_token_rejected_twice_is_wechat_unavailable(settings, redis, fake_wechat):
    client = mini_program(settings, redis)
    await inject_fault(fake_wechat, "getuserphonenumber", errcode=40001, errmsg="invalid credential", times=2)

    with pytest.raises(WeChatUnavailable):
        await client.phone_number(phone_code(new_phone()))


async def test_with_redis_down_calls_still_work(settings, fake_wechat):
    down = redis_that_is_down()
    down.test_prefix = f"down:{uuid4().hex[:8]}:"
    client = mini_program(settings, down)
    before = await calls(fake_wechat, "token")
    try:
        phones = [new_phone(), new_phone()]
        assert await client.phone_number(phone_code(phones[0])) == phones[0]
        assert await client.phone_number(phone_code(phones[1])) == phones[1]
    finally:
        await down.aclose()

    # The token is kept in the process meanwhile: one fetch, not one per call.
    assert await calls(fake_wechat, "token") == before + 1


async def test_concurrent_calls_with_an_empty_cache_do_not_stampede_the_token_endpoint(settings, redis, fake_wechat):
    clients = [mini_program(settings, redis) for _ in range(4)]
    phones = [new_phone() for _ in range(16)]
    before = await calls(fake_wechat, "token")

    results = await asyncio.gather(*(clients[i % 4].phone_number(phone_code(phone)) for i, phone in enumerate(phones)))

    assert results == phones
    assert await calls(fake_wechat, "token") - before <= 2


@pytest.mark.parametrize("secret", ["not-the-secret", ""])
async def test_a_bad_app_secret_is_wechat_unavailable(settings, redis, fake_wechat, secret):
    client = WeChatpyMiniProgram(
        appid=settings.wechat_appid, secret=secret, base_url=settings.wechat_api_base, timeout=2.0, redis=redis, key_prefix=redis.test_prefix
    )

    with pytest.raises(WeChatUnavailable):
        await client.phone_number(phone_code(new_phone()))
    assert await cached_token(settings, redis) is None


async def test_a_failed_token_fetch_does_not_hold_back_the_next_call(settings, redis, fake_wechat):
    client = mini_program(settings, redis)
    await inject_fault(fake_wechat, "token", errcode=-1, errmsg="system error")
    with pytest.raises(WeChatUnavailable):
        await client.phone_number(phone_code(new_phone()))

    started = time.monotonic()
    phone = new_phone()
    assert await client.phone_number(phone_code(phone)) == phone

    assert time.monotonic() - started < 1.0


# ---- the calls and how WeChat's answers map -----------------------------------------------------


async def test_code_to_session(settings, redis, fake_wechat):
    user = new_user()

    session = await mini_program(settings, redis).code_to_session(login_code(user))

    assert isinstance(session, WeChatSession)
    assert session.openid == openid_for(settings.wechat_appid, user)
    assert session.unionid == unionid_for(user)
    async with httpx.AsyncClient(base_url=fake_wechat) as http:
        assert session.session_key == (await http.get(f"__fake__/sessions/{session.openid}")).json()["session_key"]


async def test_code_to_session_without_unionid(settings, redis):
    session = await mini_program(settings, redis).code_to_session(login_code(new_user("nounion-")))

    assert session.unionid is None


@pytest.mark.parametrize("code, errcode", [("bad code", 40029), ("", 40029)])
async def test_code_to_session_refusals(settings, redis, code, errcode):
    with pytest.raises(WeChatRefused) as refused:
        await mini_program(settings, redis).code_to_session(code)

    assert refused.value.errcode == errcode


@pytest.mark.parametrize("errcode", [-1, 45009, 45011])
async def test_wechat_busy_is_unavailable(settings, redis, fake_wechat, errcode):
    await inject_fault(fake_wechat, "jscode2session", errcode=errcode, errmsg="busy")

    with pytest.raises(WeChatUnavailable):
        await mini_program(settings, redis).code_to_session(login_code(new_user()))


async def test_a_wechat_timeout_is_unavailable(settings, redis, fake_wechat):
    await inject_fault(fake_wechat, "jscode2session", mode="delay", seconds=1.5)

    with pytest.raises(WeChatUnavailable):
        await mini_program(settings, redis, timeout=0.5).code_to_session(login_code(new_user()))


async def test_wechat_unreachable_is_unavailable(settings, redis):
    client = mini_program(settings, redis, base_url=f"http://127.0.0.1:{free_port()}/")

    with pytest.raises(WeChatUnavailable):
        await client.code_to_session(login_code(new_user()))
    with pytest.raises(WeChatUnavailable):
        await client.phone_number(phone_code(new_phone()))


async def test_subscribe_message_to_a_refusing_user_is_refused_43101(settings, redis, fake_wechat):
    client = mini_program(settings, redis)
    session = await client.code_to_session(login_code(new_user("refuse-")))

    with pytest.raises(WeChatRefused) as refused:
        await client.send_subscribe_message(session.openid, "tmpl-application-result", {"thing1": {"value": "经营贷"}}, None)

    assert refused.value.errcode == 43101


async def test_subscribe_message_is_delivered(settings, redis, fake_wechat):
    client = mini_program(settings, redis)
    session = await client.code_to_session(login_code(new_user()))

    await client.send_subscribe_message(session.openid, "tmpl-repayment-due", {"amount1": {"value": "1,234.00"}}, "pages/loan/index")

    async with httpx.AsyncClient(base_url=fake_wechat) as http:
        sent = [m for m in (await http.get("__fake__/messages")).json() if m["touser"] == session.openid]
    assert [(m["template_id"], m["page"], m["data"]) for m in sent] == [
        ("tmpl-repayment-due", "pages/loan/index", {"amount1": {"value": "1,234.00"}})
    ]


async def test_wxa_code_is_a_png(settings, redis):
    image = await mini_program(settings, redis).wxa_code("r=AB12", "pages/index/index")

    assert image.startswith(PNG_MAGIC)
    assert Image.open(io.BytesIO(image)).format == "PNG"


async def test_wxa_code_with_a_too_long_scene_is_refused(settings, redis):
    with pytest.raises(WeChatRefused):
        await mini_program(settings, redis).wxa_code("s" * 33, "pages/index/index")


# ---- the older encrypted phone form ---------------------------------------------------------------


def encrypt(session_key: str, payload: dict, iv: bytes | None = None) -> tuple[str, str]:
    iv = iv or os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(payload).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode(), base64.b64encode(iv).decode()


def payload(phone: str, appid: str) -> dict:
    return {"phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86", "watermark": {"appid": appid, "timestamp": int(time.time())}}


SESSION_KEY = base64.b64encode(b"0123456789abcdef").decode()


def test_decrypt_phone_round_trip(settings, redis):
    phone = new_phone()
    data, iv = encrypt(SESSION_KEY, payload(phone, settings.wechat_appid))

    assert mini_program(settings, redis).decrypt_phone(SESSION_KEY, data, iv) == phone


def _flip_first_byte(data: str) -> str:
    raw = bytearray(base64.b64decode(data))
    raw[0] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda data, iv, appid: (SESSION_KEY, _flip_first_byte(data), iv), id="tampered-data"),
        pytest.param(lambda data, iv, appid: (base64.b64encode(b"fedcba9876543210").decode(), data, iv), id="other-session-key"),
        pytest.param(lambda data, iv, appid: (SESSION_KEY, data, base64.b64encode(os.urandom(16)).decode()), id="other-iv"),
        pytest.param(lambda data, iv, appid: (SESSION_KEY, data[:-8], iv), id="truncated"),
        pytest.param(lambda data, iv, appid: (SESSION_KEY, "%%% not base64 %%%", iv), id="not-base64"),
        pytest.param(lambda data, iv, appid: (SESSION_KEY, data, "c2hvcnQ="), id="short-iv"),
        pytest.param(lambda data, iv, appid: (SESSION_KEY, *encrypt(SESSION_KEY, payload("15800001111", "wx1111111111other"))), id="other-appid"),
        pytest.param(lambda data, iv, appid: (SESSION_KEY, *encrypt(SESSION_KEY, {"purePhoneNumber": "15800001111"})), id="no-watermark"),
    ],
)
def test_decrypt_phone_refusals(settings, redis, spoil):
    data, iv = encrypt(SESSION_KEY, payload(new_phone(), settings.wechat_appid))
    key, data, iv = spoil(data, iv, settings.wechat_appid)

    with pytest.raises(WeChatRefused) as refused:
        mini_program(settings, redis).decrypt_phone(key, data, iv)

    assert refused.value.errcode == -41003
