"""A fake WeChat server for the mini-program APIs the platform calls.

Run it alone with ``python -m fakes.wechat [--port 8101]``; ``make run`` starts it beside the API.

How a developer plays a WeChat user: ``wx.login`` codes are ``<user>.<anything>`` — the same
``<user>`` is always the same person (same openid and unionid), and each code works once, as on
WeChat. ``getPhoneNumber`` codes are ``<11-digit phone>.<anything>``. Users named ``nounion-…``
have no unionid; users named ``refuse-…`` have refused subscribe messages.

Test hooks live under ``/__fake__/``: inject faults, expire access tokens, read what was sent.
WeChat Pay's red packets (``fakes.wechat_pay``) are served by the same process.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field

import qrcode
from sanic import Request, Sanic, response

from fakes.faults import next_fault
from fakes.wechat_pay import mount_fake_wechat_pay

DEFAULT_APPS = {"wx0000000000demo": "demo-wechat-secret"}
DEFAULT_TEMPLATES = {"tmpl-application-result", "tmpl-contract-to-sign", "tmpl-repayment-due", "tmpl-overdue"}

_LOGIN_CODE = re.compile(r"^([A-Za-z0-9_-]{1,40})\.[A-Za-z0-9_-]{1,64}$")
_PHONE_CODE = re.compile(r"^(1[3-9]\d{9})\.[A-Za-z0-9_-]{1,64}$")
TOKEN_TTL_SECONDS = 7200


@dataclass
class Fault:
    mode: str  # "error" (answer with errcode) or "delay" (sleep, then answer normally)
    errcode: int = -1
    errmsg: str = "system error"
    seconds: float = 0.0
    times: int = 1


@dataclass
class FakeState:
    apps: dict[str, str]
    templates: set[str]
    token_ttl: int = TOKEN_TTL_SECONDS
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (appid, expires_at)
    used_codes: set[str] = field(default_factory=set)
    sessions: dict[str, dict] = field(default_factory=dict)  # openid -> {"user", "session_key", "appid"}
    messages: list[dict] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)


def openid_for(appid: str, user: str) -> str:
    digest = hashlib.sha256(f"openid:{appid}:{user}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


def unionid_for(user: str) -> str:
    digest = hashlib.sha256(f"unionid:{user}".encode()).digest()
    return "u" + base64.urlsafe_b64encode(digest).decode()[:27]


def _error(errcode: int, errmsg: str) -> response.HTTPResponse:
    # WeChat answers errors with HTTP 200 and an errcode; its messages end with a request id.
    return response.json({"errcode": errcode, "errmsg": f"{errmsg} rid: {uuid.uuid4().hex[:24]}"})


def create_fake_wechat(apps: dict[str, str] | None = None, templates: set[str] | None = None, name: str = "fake_wechat") -> Sanic:
    app = Sanic(name)
    app.config.ACCESS_LOG = False
    state = FakeState(apps=dict(apps or DEFAULT_APPS), templates=set(templates or DEFAULT_TEMPLATES))
    app.ctx.state = state
    # WeChat Pay (red packets) answers from the same process, as the demo's one fake "Tencent".
    mount_fake_wechat_pay(app, appids=set(state.apps))

    async def injected(endpoint: str) -> response.HTTPResponse | None:
        fault = await next_fault(state.calls, state.faults, endpoint)
        return _error(fault.errcode, fault.errmsg) if fault else None

    def check_token(request: Request) -> response.HTTPResponse | None:
        token = request.args.get("access_token")
        if not token:
            return _error(41001, "access_token missing")
        known = state.tokens.get(token)
        if known is None:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        if known[1] < time.time():
            return _error(42001, "access_token expired")
        return None

    @app.get("/cgi-bin/token")
    async def token(request: Request):
        if fault := await injected("token"):
            return fault
        if request.args.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        appid, secret = request.args.get("appid"), request.args.get("secret")
        if appid not in state.apps:
            return _error(40013, "invalid appid")
        if state.apps[appid] != secret:
            return _error(40125, "invalid appsecret")
        access_token = secrets.token_urlsafe(96)[:128]
        state.tokens[access_token] = (appid, time.time() + state.token_ttl)
        return response.json({"access_token": access_token, "expires_in": state.token_ttl})

    @app.get("/sns/jscode2session")
    async def jscode2session(request: Request):
        if fault := await injected("jscode2session"):
            return fault
        appid, secret, code = request.args.get("appid"), request.args.get("secret"), request.args.get("js_code", "")
        if request.args.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        if appid not in state.apps:
            return _error(40013, "invalid appid")
        if state.apps[appid] != secret:
            return _error(40125, "invalid appsecret")
        match = _LOGIN_CODE.match(code)
        if not match:
            return _error(40029, "invalid code")
        if code in state.used_codes:
            return _error(40163, "code been used")
        state.used_codes.add(code)
        user = match.group(1)
        openid = openid_for(appid, user)
        session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        state.sessions[openid] = {"user": user, "session_key": session_key, "appid": appid}
        body = {"session_key": session_key, "openid": openid}
        if not user.startswith("nounion-"):
            body["unionid"] = unionid_for(user)
        return response.json(body)

    @app.post("/wxa/business/getuserphonenumber")
    async def phone_number(request: Request):
        if fault := await injected("getuserphonenumber") or check_token(request):
            return fault
        code = (request.json or {}).get("code", "") if isinstance(request.json, dict) else ""
        match = _PHONE_CODE.match(code)
        if not match:
            return _error(40029, "invalid code")
        if code in state.used_codes:
            return _error(40163, "code been used")
        state.used_codes.add(code)
        appid = state.tokens[request.args.get("access_token")][0]
        phone = match.group(1)
        return response.json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": phone,
                    "purePhoneNumber": phone,
                    "countryCode": "86",
                    "watermark": {"timestamp": int(time.time()), "appid": appid},
                },
            }
        )

    @app.post("/cgi-bin/message/subscribe/send")
    async def subscribe_send(request: Request):
        if fault := await injected("subscribe_send") or check_token(request):
            return fault
        body = request.json if isinstance(request.json, dict) else {}
        openid, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        session = state.sessions.get(openid or "")
        if session is None:
            return _error(40003, "invalid openid")
        if template_id not in state.templates:
            return _error(40037, "invalid template_id")
        if not isinstance(data, dict) or not data:
            return _error(47003, "argument invalid! data is empty")
        for key, item in data.items():
            if not isinstance(item, dict) or not str(item.get("value", "")).strip():
                return _error(47003, f"argument invalid! data.{key}.value is empty")
        if session["user"].startswith("refuse-"):
            return _error(43101, "user refuse to accept the msg")
        msgid = len(state.messages) + 1
        state.messages.append({"msgid": msgid, **body})
        return response.json({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    @app.post("/wxa/getwxacodeunlimit")
    async def wxa_code_unlimit(request: Request):
        if fault := await injected("getwxacodeunlimit") or check_token(request):
            return fault
        body = request.json if isinstance(request.json, dict) else {}
        scene = body.get("scene")
        if not isinstance(scene, str) or not scene or len(scene) > 32:
            return _error(40169, "invalid length for scene, or the data is not json string")
        page = body.get("page", "pages/index/index")
        if not isinstance(page, str) or page.startswith("/"):
            return _error(41030, "invalid page")
        width = int(body.get("width") or 430)
        # A real WeChat code is a round "sun" code; a square QR of the same payload stands in for it.
        image = qrcode.make(f"{page}?scene={scene}", box_size=max(1, width // 45), border=2)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return response.raw(buffer.getvalue(), content_type="image/png")

    # ---- test hooks -------------------------------------------------------------------------

    @app.post("/__fake__/faults")
    async def add_fault(request: Request):
        body = request.json
        state.faults.setdefault(body["endpoint"], []).append(
            Fault(
                mode=body.get("mode", "error"),
                errcode=int(body.get("errcode", -1)),
                errmsg=body.get("errmsg", "system error"),
                seconds=float(body.get("seconds", 0)),
                times=int(body.get("times", 1)),
            )
        )
        return response.json({"ok": True})

    @app.post("/__fake__/expire-tokens")
    async def expire_tokens(request: Request):
        for token, (appid, _) in list(state.tokens.items()):
            state.tokens[token] = (appid, 0)
        return response.json({"expired": len(state.tokens)})

    @app.get("/__fake__/sessions/<openid>")
    async def session_of(request: Request, openid: str):
        session = state.sessions.get(openid)
        return response.json(session) if session else response.json({}, status=404)

    @app.get("/__fake__/messages")
    async def sent_messages(request: Request):
        return response.json(state.messages)

    @app.get("/__fake__/calls")
    async def calls(request: Request):
        return response.json(state.calls)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="fake WeChat server for tests and the demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    app = create_fake_wechat()
    app.run(host=args.host, port=args.port, single_process=True, motd=False, access_log=False)


if __name__ == "__main__":
    main()
