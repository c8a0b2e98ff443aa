"""Which implementation of each outside party the service uses, chosen by the settings.

``PROVIDERS=sandbox`` wires the local sandboxes; ``real`` wires production clients where they
exist and refuses to start where they do not (the README says what each real integration needs).
WeChat always uses its real client (wechatpy): in the demo and tests it talks to ``fakes.wechat``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from channels.ports import MiniProgram
from infra.settings import Settings, SettingsError
from infra.cache import RedisCache
from integrations import data_sandbox
from integrations.ca_sandbox import SandboxCertificateAuthority
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.identity_sandbox import SandboxIdentityVerifier
from integrations.liveness_sandbox import SandboxLiveness
from integrations.notary_sandbox import SandboxNotary
from integrations.sms_sandbox import SandboxSms
from integrations.wechat import WeChatpyMiniProgram
from integrations.topup_sandbox import SandboxTopUp
from integrations.wechat_pay import WeChatpyPay
from lending_core.contracts.ports import CertificateAuthority, EvidenceNotary, LivenessCheck, SmsSender
from lending_core.customers.ports import IdentityVerifier
from lending_core.datasources.gather import DataSources
from lending_core.loans.ports import CoreBanking
from marketing.ports import TopUpProvider, WeChatPay


@dataclass(frozen=True)
class Providers:
    mini_program: MiniProgram
    identity_verifier: IdentityVerifier
    data_sources: DataSources
    notary: EvidenceNotary
    sms: SmsSender
    certificate_authority: CertificateAuthority
    liveness: LivenessCheck
    core_banking: CoreBanking
    wechat_pay: WeChatPay
    top_up: TopUpProvider


def build_providers(settings: Settings, redis) -> Providers:
    if settings.providers == "real":
        raise SettingsError(
            "no production client exists yet for: real-name verification, the data sources, the evidence notary, SMS, phone top-up (see README, 'Outside parties')"
        )
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
        data_sources=sandbox_data_sources(
            cache=RedisCache(redis, settings.redis_key_prefix),
            timeout_seconds=settings.data_source_timeout_seconds,
            cache_ttl_seconds=settings.data_cache_seconds,
        ),
        notary=SandboxNotary(Path(settings.notary_dir)),
        sms=SandboxSms(),
        # The sandbox CA keeps its hierarchy beside the notary's directory, shared by workers.
        certificate_authority=SandboxCertificateAuthority(Path(settings.notary_dir).parent / "sandbox_ca"),
        liveness=SandboxLiveness(hashlib.sha256(b"liveness-sandbox\x00" + settings.secret_key.encode("utf-8")).digest()),
        # Demo accounts in our own database: see integrations/core_banking_sandbox.py.
        core_banking=SandboxCoreBanking(),
        # WeChat Pay's real client (wechatpy); the demo's settings point it at the fake WeChat server.
        wechat_pay=WeChatpyPay(
            mch_id=settings.wechat_pay_mch_id,
            api_key=settings.wechat_pay_api_key,
            appid=settings.wechat_pay_appid,
            base_url=settings.wechat_pay_api_base,
            timeout=settings.wechat_pay_timeout_seconds,
            send_name=settings.wechat_pay_send_name,
            cert=settings.wechat_pay_cert,
            cert_key=settings.wechat_pay_cert_key,
            threads=settings.payouts_at_once,  # wechatpy's HTTP is synchronous: a thread per payout in flight
        ),
        top_up=SandboxTopUp(journal=Path(settings.topup_sandbox_file) if settings.topup_sandbox_file else None),
    )


def sandbox_data_sources(*, cache=None, timeout_seconds: float = 3.0, cache_ttl_seconds: int = 600) -> DataSources:
    """Every data source as its sandbox (the demo, tests, simulation)."""
    return DataSources(
        credit_bureau=data_sandbox.SandboxCreditBureau(),
        tax=data_sandbox.SandboxTaxBureau(),
        court=data_sandbox.SandboxCourts(),
        social_security=data_sandbox.SandboxSocialSecurity(),
        provident_fund=data_sandbox.SandboxProvidentFund(),
        property=data_sandbox.SandboxPropertyRegistry(),
        bank=data_sandbox.SandboxBankData(),
        local=data_sandbox.SandboxLocalData(),
        cache=cache,
        timeout_seconds=timeout_seconds,
        cache_ttl_seconds=cache_ttl_seconds,
    )
