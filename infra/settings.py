"""One typed settings object, read from the environment once (STYLE rule 10).

Nothing else in the code reads ``os.environ``: the composition root calls
``Settings.from_env()`` and hands the result down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

# Development-only secrets. They let `make run` start on a bare machine; production refuses them.
DEV_SECRET_KEY = "dev-only-secret-key-change-me-0123456789abcdef"
DEV_PII_ENCRYPTION_KEYS = "dev1:ZGV2LW9ubHktcGlpLWtleS0zMi1ieXRlcy0wMDAwMDA="
DEV_PII_HASH_KEY = "ZGV2LW9ubHktbG9va3VwLWhhc2gta2V5LTMyLWJ5dGVzLTAw"
EMBEDDED_DATABASE_URL = "sqlite://var/app.sqlite3"

ENVIRONMENTS = ("dev", "test", "production")
DEV_WECHAT_SECRET = "demo-wechat-secret"
# WeChat Pay v2 (red packets): the demo merchant of the local fake (a real one replaces both).
DEMO_WECHAT_PAY_MCH_ID = "1900000109"
DEV_WECHAT_PAY_API_KEY = "devonlywechatpaykey0123456789abc"
# Payout fault injection (a drill, never for customers): see marketing/payouts.py.
PAYOUT_FAULTS = ("", "crash_after_wechat_pay_accepted")
MAX_PAYOUTS_AT_ONCE = 32
DEMO_WECHAT_TEMPLATES = {
    "application_result": "tmpl-application-result",
    "contract_to_sign": "tmpl-contract-to-sign",
    "repayment_due": "tmpl-repayment-due",
    "overdue": "tmpl-overdue",
}


class SettingsError(ValueError):
    """The environment does not describe a configuration the platform may run with."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    app_env: str = "dev"
    database_url: str = EMBEDDED_DATABASE_URL
    # None means the in-process Redis-compatible store (one worker only).
    redis_url: str | None = None
    redis_key_prefix: str = "rcb:"
    secret_key: str = DEV_SECRET_KEY
    pii_encryption_keys: str = DEV_PII_ENCRYPTION_KEYS
    pii_active_key_id: str = "dev1"
    pii_hash_key: str = DEV_PII_HASH_KEY
    host: str = "127.0.0.1"
    port: int = 8000
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    staff_max_failed_logins: int = 5
    staff_lockout_seconds: int = 15 * 60
    max_request_bytes: int = 1024 * 1024
    # "sandbox" wires the local sandboxes of outside parties; "real" their production clients.
    providers: str = "sandbox"
    # WeChat mini-program. The defaults point at the local fake WeChat server (`fakes.wechat`),
    # which `make run` starts beside the API; production points at api.weixin.qq.com.
    wechat_appid: str = "wx0000000000demo"
    wechat_secret: str = "demo-wechat-secret"
    wechat_api_base: str = "http://127.0.0.1:8101/"
    wechat_timeout_seconds: float = 5.0
    # Subscribe-message template ids, as configured in the mini-program's admin console.
    wechat_templates: Mapping[str, str] = field(default_factory=lambda: dict(DEMO_WECHAT_TEMPLATES))
    # External data sources (credit bureau, tax…): per-call timeout and how long answers are cached.
    data_source_timeout_seconds: float = 3.0
    data_cache_seconds: int = 600
    # Signed server-to-server requests (bank apps, partner platforms): accepted clock skew.
    signature_window_seconds: int = 300
    # The sandbox evidence notary keeps its own signing key and journal here, outside our database.
    notary_dir: str = "var/notary"
    # One-time signing codes: how long one lives and how many wrong tries it takes.
    sms_code_ttl_seconds: int = 300
    sms_code_max_attempts: int = 5
    log_json: bool = True
    log_level: str = "INFO"
    # Runs the outbox relay inside the API process (demo); production runs it as its own worker.
    run_embedded_workers: bool = True
    # WeChat Pay v2 (mini-program red packets, ``sendminiprogramhb``). The base URL defaults to
    # WECHAT_API_BASE: the local fake WeChat server serves both; production points at
    # https://api.mch.weixin.qq.com/ with the merchant's API certificate.
    wechat_pay_mch_id: str = DEMO_WECHAT_PAY_MCH_ID
    wechat_pay_api_key: str = DEV_WECHAT_PAY_API_KEY
    wechat_pay_appid: str = "wx0000000000demo"
    wechat_pay_api_base: str = "http://127.0.0.1:8101/"
    wechat_pay_timeout_seconds: float = 5.0
    wechat_pay_cert: str | None = None
    wechat_pay_cert_key: str | None = None
    # The merchant name a red packet shows (at most 32 characters).
    wechat_pay_send_name: str = "农商银行"
    # PAYOUT_FAULT=crash_after_wechat_pay_accepted freezes the payout worker right after WeChat
    # Pay accepted a payment and before our commit, writing PAYOUT_FAULT_MARKER first, so a
    # drill can kill -9 it there. Off by default; refused in production.
    payout_fault: str = ""
    payout_fault_marker: str = "var/payout_fault.marker"
    # Payouts (red packets, top-ups) the relay sends at once. Keep it within what WeChat Pay lets
    # the merchant call: 1 sends them one after another.
    payouts_at_once: int = 8
    # TOPUP_SANDBOX_FILE: the sandbox top-up provider keeps its orders in this journal file, so a
    # restarted payout worker remembers them as a real provider would (the faults drill). Off by
    # default: the sandbox then keeps them in memory.
    topup_sandbox_file: str | None = None
    # Campaigns: a budget above the threshold (integer fen) needs a second person's approval; a
    # bank may set its own (CAMPAIGN_APPROVAL_THRESHOLDS=HZRCB=2000000,… in fen, by bank code).
    campaign_approval_threshold_fen: int = 5_000_000
    campaign_approval_thresholds: Mapping[str, int] = field(default_factory=dict)
    # Red-packet grabs one device, one network address, one customer may attempt per minute.
    grab_limit_device_per_minute: int = 20
    grab_limit_address_per_minute: int = 600
    grab_limit_customer_per_minute: int = 20
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        app_env = env.get("APP_ENV", "dev")
        if app_env not in ENVIRONMENTS:
            raise SettingsError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}")
        settings = cls(
            app_env=app_env,
            database_url=_normalise_database_url(env.get("DATABASE_URL") or EMBEDDED_DATABASE_URL),
            redis_url=env.get("REDIS_URL") or None,
            redis_key_prefix=env.get("REDIS_KEY_PREFIX", "rcb:"),
            secret_key=env.get("SECRET_KEY") or DEV_SECRET_KEY,
            pii_encryption_keys=env.get("PII_ENCRYPTION_KEYS") or DEV_PII_ENCRYPTION_KEYS,
            pii_active_key_id=env.get("PII_ACTIVE_KEY_ID") or "dev1",
            pii_hash_key=env.get("PII_HASH_KEY") or DEV_PII_HASH_KEY,
            host=env.get("HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8000),
            access_token_ttl_seconds=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 15 * 60),
            refresh_token_ttl_seconds=_int(env, "REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600),
            staff_max_failed_logins=_int(env, "STAFF_MAX_FAILED_LOGINS", 5),
            staff_lockout_seconds=_int(env, "STAFF_LOCKOUT_SECONDS", 15 * 60),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 1024 * 1024),
            providers=env.get("PROVIDERS", "sandbox"),
            wechat_appid=env.get("WECHAT_APPID") or "wx0000000000demo",
            wechat_secret=env.get("WECHAT_SECRET") or DEV_WECHAT_SECRET,
            wechat_api_base=_with_slash(env.get("WECHAT_API_BASE") or "http://127.0.0.1:8101/"),
            wechat_timeout_seconds=float(_int(env, "WECHAT_TIMEOUT_MS", 5000)) / 1000,
            wechat_templates=_templates(env.get("WECHAT_TEMPLATES")),
            signature_window_seconds=_int(env, "SIGNATURE_WINDOW_SECONDS", 300),
            notary_dir=env.get("NOTARY_DIR") or "var/notary",
            sms_code_ttl_seconds=_int(env, "SMS_CODE_TTL_SECONDS", 300),
            sms_code_max_attempts=_int(env, "SMS_CODE_MAX_ATTEMPTS", 5),
            data_source_timeout_seconds=_int(env, "DATA_SOURCE_TIMEOUT_MS", 3000) / 1000,
            data_cache_seconds=_int(env, "DATA_CACHE_SECONDS", 600),
            log_json=_bool(env, "LOG_JSON", True),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            run_embedded_workers=_bool(env, "RUN_EMBEDDED_WORKERS", app_env != "production"),
            campaign_approval_threshold_fen=_int(env, "CAMPAIGN_APPROVAL_THRESHOLD_FEN", 5_000_000),
            campaign_approval_thresholds=_fen_by_bank(env.get("CAMPAIGN_APPROVAL_THRESHOLDS")),
            grab_limit_device_per_minute=_int(env, "GRAB_LIMIT_DEVICE_PER_MINUTE", 20),
            grab_limit_address_per_minute=_int(env, "GRAB_LIMIT_ADDRESS_PER_MINUTE", 600),
            grab_limit_customer_per_minute=_int(env, "GRAB_LIMIT_CUSTOMER_PER_MINUTE", 20),
            wechat_pay_mch_id=env.get("WECHAT_PAY_MCH_ID") or DEMO_WECHAT_PAY_MCH_ID,
            wechat_pay_api_key=env.get("WECHAT_PAY_API_KEY") or DEV_WECHAT_PAY_API_KEY,
            wechat_pay_appid=env.get("WECHAT_PAY_APPID") or env.get("WECHAT_APPID") or "wx0000000000demo",
            wechat_pay_api_base=_with_slash(env.get("WECHAT_PAY_API_BASE") or env.get("WECHAT_API_BASE") or "http://127.0.0.1:8101/"),
            wechat_pay_timeout_seconds=_int(env, "WECHAT_PAY_TIMEOUT_MS", 5000) / 1000,
            wechat_pay_cert=env.get("WECHAT_PAY_CERT") or None,
            wechat_pay_cert_key=env.get("WECHAT_PAY_CERT_KEY") or None,
            wechat_pay_send_name=env.get("WECHAT_PAY_SEND_NAME") or "农商银行",
            payout_fault=env.get("PAYOUT_FAULT", ""),
            payout_fault_marker=env.get("PAYOUT_FAULT_MARKER") or "var/payout_fault.marker",
            payouts_at_once=_int(env, "PAYOUTS_AT_ONCE", 8),
            topup_sandbox_file=env.get("TOPUP_SANDBOX_FILE") or None,
        )
        settings.check()
        return settings

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    def check(self) -> None:
        """Refuse configurations that would be unsafe for real customers."""
        if self.providers not in ("sandbox", "real"):
            raise SettingsError(f"PROVIDERS must be sandbox or real, got {self.providers!r}")
        if self.payout_fault not in PAYOUT_FAULTS:
            raise SettingsError(f"PAYOUT_FAULT must be empty or one of {', '.join(PAYOUT_FAULTS[1:])}, got {self.payout_fault!r}")
        if not 1 <= self.payouts_at_once <= MAX_PAYOUTS_AT_ONCE:
            raise SettingsError(f"PAYOUTS_AT_ONCE must be 1 to {MAX_PAYOUTS_AT_ONCE}, got {self.payouts_at_once}")
        if not (self.wechat_pay_mch_id.isdigit() and len(self.wechat_pay_mch_id) == 10):
            # The bill number is mch_id + yyyymmdd + 10 digits: 28 characters, as WeChat Pay asks.
            raise SettingsError("WECHAT_PAY_MCH_ID must be the merchant's 10-digit number")
        if len(self.wechat_pay_send_name) > 32:
            raise SettingsError("WECHAT_PAY_SEND_NAME must be at most 32 characters")
        if self.app_env != "production":
            return
        problems = []
        if self.uses_embedded_database:
            problems.append("DATABASE_URL must point at PostgreSQL, not the embedded SQLite file")
        if self.uses_embedded_redis:
            problems.append("REDIS_URL must point at Redis, not the in-process store")
        if self.providers != "real":
            problems.append("PROVIDERS must be 'real': sandboxes of outside parties are not for customers")
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be set to a secret of at least 32 characters")
        if self.pii_encryption_keys == DEV_PII_ENCRYPTION_KEYS or self.pii_hash_key == DEV_PII_HASH_KEY:
            problems.append("PII_ENCRYPTION_KEYS and PII_HASH_KEY must be set to production keys")
        if self.wechat_secret == DEV_WECHAT_SECRET or "127.0.0.1" in self.wechat_api_base:
            problems.append("WECHAT_SECRET and WECHAT_API_BASE must name the real mini-program and WeChat")
        if (
            self.wechat_pay_api_key == DEV_WECHAT_PAY_API_KEY
            or self.wechat_pay_mch_id == DEMO_WECHAT_PAY_MCH_ID
            or "127.0.0.1" in self.wechat_pay_api_base
            or not (self.wechat_pay_cert and self.wechat_pay_cert_key)
        ):
            # Red packets are paid with the merchant's API key and its client certificate.
            problems.append("WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY, WECHAT_PAY_API_BASE and the merchant certificate must be the real ones")
        if self.run_embedded_workers:
            problems.append("RUN_EMBEDDED_WORKERS must be off: run the workers as their own processes")
        if self.payout_fault:
            problems.append("PAYOUT_FAULT is a drill: it must be off")
        if problems:
            raise SettingsError("refusing to start in production: " + "; ".join(problems))


def _normalise_database_url(url: str) -> str:
    # tortoise names the asyncpg dialect "postgres"; accept the spellings people paste.
    for prefix in ("postgresql+asyncpg://", "postgresql://", "asyncpg://"):
        if url.startswith(prefix):
            return "postgres://" + url[len(prefix):]
    return url


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _templates(raw: str | None) -> dict[str, str]:
    """``WECHAT_TEMPLATES=application_result=<id>,contract_to_sign=<id>,…``"""
    if not raw:
        return dict(DEMO_WECHAT_TEMPLATES)
    templates = {}
    for item in raw.split(","):
        kind, sep, template_id = item.partition("=")
        if not sep or kind.strip() not in DEMO_WECHAT_TEMPLATES or not template_id.strip():
            raise SettingsError(f"WECHAT_TEMPLATES items are kind=template_id with kinds {', '.join(DEMO_WECHAT_TEMPLATES)}")
        templates[kind.strip()] = template_id.strip()
    return templates


def _fen_by_bank(raw: str | None) -> dict[str, int]:
    """``CAMPAIGN_APPROVAL_THRESHOLDS=HZRCB=2000000,LSRCB=10000000`` (fen, by bank code)."""
    thresholds = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        code, sep, fen = item.partition("=")
        if not sep or not code.strip() or not fen.strip().isdigit():
            raise SettingsError("CAMPAIGN_APPROVAL_THRESHOLDS items are BANKCODE=fen, e.g. HZRCB=2000000")
        thresholds[code.strip()] = int(fen)
    return thresholds
