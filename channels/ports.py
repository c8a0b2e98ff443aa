"""What the channels need from outside parties, as interfaces. Implementations live in
``integrations`` (a wechatpy client for WeChat; sandboxes for the rest) and are chosen by the
composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from infra.errors import DependencyUnavailable, InvalidInput


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str | None
    session_key: str


class WeChatRefused(InvalidInput):
    """WeChat refused what the caller gave it (an invalid or used code, an unknown user)."""

    def __init__(self, errcode: int, message: str = "WeChat refused the request"):
        super().__init__(message, details={"wechat_errcode": errcode})
        self.errcode = errcode


class WeChatUnavailable(DependencyUnavailable):
    """WeChat did not answer in time or is busy; nothing was changed, try again shortly."""


class MiniProgram(Protocol):
    """The WeChat mini-program server APIs (login, phone number, subscribe messages, codes)."""

    appid: str

    async def code_to_session(self, code: str) -> WeChatSession: ...

    async def phone_number(self, code: str) -> str: ...

    async def send_subscribe_message(self, openid: str, template_id: str, data: dict, page: str | None) -> None: ...

    async def wxa_code(self, scene: str, page: str, width: int = 430) -> bytes: ...

    def decrypt_phone(self, session_key: str, encrypted_data: str, iv: str) -> str:
        """The phone in the older ``getPhoneNumber`` form: data encrypted with the session key."""
        ...
