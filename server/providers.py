"""Which implementation of each outside party the service uses, chosen by the settings.

``PROVIDERS=sandbox`` wires the local sandboxes; ``real`` wires production clients where they
exist and refuses to start where they do not (the README says what each real integration needs).
WeChat always uses its real client (wechatpy): in the demo and tests it talks to ``fakes.wechat``.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.ports import MiniProgram
from infra.settings import Settings, SettingsError
from integrations.identity_sandbox import SandboxIdentityVerifier
from integrations.wechat import WeChatpyMiniProgram
from lending_core.customers.ports import IdentityVerifier


@dataclass(frozen=True)
class Providers:
    mini_program: MiniProgram
    identity_verifier: IdentityVerifier


def build_providers(settings: Settings, redis) -> Providers:
    if settings.providers == "real":
        raise SettingsError("no production client exists yet for: real-name verification (see README, 'Outside parties')")
    return Providers(
        mini_program=WeChatpyMiniProgram(
            appid=settings.wechat_appid,
            secret=settings.wechat_secret,
            base_url=settings.wechat_api_base,
            timeout=settings.wechat_timeout_seconds,
            redis=redis,
            key_prefix=settings.redis_key_prefix,
        ),
        identity_verifier=SandboxIdentityVerifier(),
    )
