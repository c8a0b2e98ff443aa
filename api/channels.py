"""The doors: WeChat mini-program login and phone binding, the bank apps' signed sessions, and
customer token refresh. Every door ends in one customer record and a token scoped to the channel
and the member bank."""

from __future__ import annotations


from pydantic import Field, model_validator
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import add_session_routes, caller_address, customer_required, token_policy
from api.signed import signed
from api.validation import Body, documented_body, ObjectId, json_body, parse_json
from channels import bank_apps, wechat
from channels.customer_sessions import reload_customer_actor
from lending_core.channel_names import WECHAT_MINIPROGRAM
from lending_core.customers.service import FirmAssertion
from marketing import service as invites

bp = Blueprint("channels", url_prefix="/api/v1/channels")


class WeChatLoginBody(Body):
    code: str = Field(min_length=1, max_length=128, description="the code from wx.login")
    bank_id: ObjectId | None = Field(None, description="the member bank chosen by city or county, if any")
    scene: str | None = Field(None, min_length=1, max_length=32, description="the invite code the mini-program was opened with (its scene)")
    device_id: str | None = Field(None, min_length=8, max_length=128, description="the install id the mini-program keeps in its storage")


class PhoneBody(Body):
    code: str | None = Field(None, min_length=1, max_length=128, description="the code from getPhoneNumber")
    encrypted_data: str | None = Field(None, min_length=1, max_length=4096, description="older form")
    iv: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def one_form(self):
        encrypted = self.encrypted_data is not None or self.iv is not None
        if (self.code is not None) == encrypted or (encrypted and not (self.encrypted_data and self.iv)):
            raise ValueError("send either code, or encrypted_data with iv")
        return self


class FirmBody(Body):
    name: str = Field(min_length=1, max_length=128)
    unified_social_credit_code: str = Field(min_length=18, max_length=18)
    legal_representative: str = Field(min_length=1, max_length=64)


class BankSessionBody(Body):
    bank_code: str = Field(min_length=1, max_length=32)
    customer_no: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=18)
    phone: str = Field(min_length=11, max_length=20)
    firm: FirmBody | None = None


@bp.post("/wechat/login")
@openapi.summary("Mini-program login: exchange a wx.login code for a customer session")
@json_body(WeChatLoginBody)
async def wechat_login(request: Request, body: WeChatLoginBody):
    invite_bank_id = await invites.invite_bank(body.scene) if body.scene else None
    login = await wechat.login(
        request.app.ctx.providers.mini_program, body.code, bank_id=body.bank_id, policy=token_policy(request), invite_bank_id=invite_bank_id
    )
    arrival = await invites.on_login(
        login.customer.id, scene=body.scene, device_id=body.device_id, ip=caller_address(request), channel=WECHAT_MINIPROGRAM
    )
    extra = {"referral": presenters.arrival(arrival)} if arrival is not None else {}
    return response.json(presenters.signed_in(login.customer, login.tokens, login.bank_id, is_new=login.is_new, **extra))


@bp.post("/wechat/phone")
@openapi.summary("Bind the phone number WeChat vouches for (getPhoneNumber code, or the older encrypted form)")
@customer_required
@json_body(PhoneBody)
async def wechat_phone(request: Request, body: PhoneBody):
    mini_program = request.app.ctx.providers.mini_program
    if body.code is not None:
        customer = await wechat.bind_phone(request.ctx.actor, mini_program, body.code)
    else:
        customer = await wechat.bind_phone_encrypted(request.ctx.actor, mini_program, body.encrypted_data, body.iv)
    return response.json(presenters.customer(customer))


@bp.post("/<channel:mobile_bank|enterprise_bank|direct_bank>/sessions")
@openapi.summary("A member bank's app opens a session for a customer it has identified (signed request)")
@documented_body(BankSessionBody)
@signed(bank_apps.load_credential)
async def bank_session(request: Request, channel: str):
    app = request.ctx.principal
    bank_apps.check_channel(app, channel)  # before the body is looked at
    body = parse_json(request, BankSessionBody)
    bank_apps.check_bank(app, body.bank_code)
    firm = FirmAssertion(**body.firm.model_dump()) if body.firm else None
    session = await bank_apps.open_session(
        app,
        customer_no=body.customer_no,
        name=body.name,
        id_number=body.id_number,
        phone=body.phone,
        firm=firm,
        policy=token_policy(request),
    )
    return response.json(presenters.signed_in(session.customer, session.tokens, app.bank.id, is_new=session.is_new), status=201)


add_session_routes(bp, audience="customer", current_actor=reload_customer_actor)
