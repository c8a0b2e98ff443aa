"""Settings are read once from the environment; production refuses anything meant for a laptop."""

from __future__ import annotations

import pytest

from infra import pii
from infra.settings import (
    DEV_PII_ENCRYPTION_KEYS,
    DEV_PII_HASH_KEY,
    DEV_SECRET_KEY,
    EMBEDDED_DATABASE_URL,
    Settings,
    SettingsError,
)


def production_env(**overrides: str) -> dict[str, str]:
    """A complete, acceptable production environment (fresh keys each time)."""
    encryption_keys, hash_key = pii.generate_key_spec()
    env = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgres://lending:secret@db.internal:5432/lending",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "PROVIDERS": "real",
        "SECRET_KEY": "a-production-secret-that-is-long-enough-0123456789",
        "PII_ENCRYPTION_KEYS": encryption_keys,
        "PII_ACTIVE_KEY_ID": "k1",
        "PII_HASH_KEY": hash_key,
        "RUN_EMBEDDED_WORKERS": "false",
        "WECHAT_APPID": "wx1234567890abcdef",
        "WECHAT_SECRET": "a-real-mini-program-secret",
        "WECHAT_API_BASE": "https://api.weixin.qq.com/",
        "WECHAT_PAY_MCH_ID": "1234567890",
        "WECHAT_PAY_API_KEY": "a-real-merchant-api-key-0123456789",
        "WECHAT_PAY_API_BASE": "https://api.mch.weixin.qq.com/",
        "WECHAT_PAY_CERT": "/etc/lending/apiclient_cert.pem",
        "WECHAT_PAY_CERT_KEY": "/etc/lending/apiclient_key.pem",
    }
    env.update(overrides)
    return env


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    return str(raised.value)


def test_defaults_use_the_embedded_stores():
    settings = Settings.from_env({})

    assert settings.app_env == "dev"
    assert settings.database_url == EMBEDDED_DATABASE_URL
    assert settings.uses_embedded_database
    assert settings.redis_url is None
    assert settings.uses_embedded_redis
    assert settings.providers == "sandbox"
    assert settings.run_embedded_workers is True


def test_development_defaults_build_a_working_keyring():
    settings = Settings.from_env({})
    keyring = pii.Keyring.from_spec(settings.pii_encryption_keys, settings.pii_active_key_id, settings.pii_hash_key)

    assert keyring.decrypt(keyring.encrypt("张三丰")) == "张三丰"


def test_bare_production_names_every_problem():
    # RUN_EMBEDDED_WORKERS defaults to off in production, so it is switched on here to be named too.
    message = refusal({"APP_ENV": "production", "RUN_EMBEDDED_WORKERS": "true"})

    assert message.startswith("refusing to start in production: ")
    for problem in (
        "DATABASE_URL must point at PostgreSQL",  # embedded database
        "REDIS_URL must point at Redis",  # embedded redis
        "PROVIDERS must be 'real'",  # sandbox providers
        "SECRET_KEY must be set",  # default secret
        "PII_ENCRYPTION_KEYS and PII_HASH_KEY must be set",  # default PII keys
        "RUN_EMBEDDED_WORKERS must be off",  # embedded workers
        "WECHAT_SECRET and WECHAT_API_BASE",  # the demo mini-program and the local fake WeChat
        "WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY",  # the demo merchant and the local fake WeChat Pay
    ):
        assert problem in message
    assert message.count(";") == 7


def test_bare_production_leaves_embedded_workers_off_but_refuses_the_rest():
    message = refusal({"APP_ENV": "production"})

    assert message.count(";") == 6
    assert "RUN_EMBEDDED_WORKERS" not in message


def test_production_refuses_embedded_workers_when_switched_on():
    assert "RUN_EMBEDDED_WORKERS must be off" in refusal(production_env(RUN_EMBEDDED_WORKERS="true"))


def test_production_defaults_embedded_workers_off():
    env = production_env()
    del env["RUN_EMBEDDED_WORKERS"]

    assert Settings.from_env(env).run_embedded_workers is False


def test_a_complete_production_environment_is_accepted():
    settings = Settings.from_env(production_env())

    assert settings.app_env == "production"
    assert not settings.uses_embedded_database
    assert not settings.uses_embedded_redis
    assert settings.providers == "real"
    assert settings.run_embedded_workers is False
    # The keys it was given actually work.
    keyring = pii.Keyring.from_spec(settings.pii_encryption_keys, settings.pii_active_key_id, settings.pii_hash_key)
    assert keyring.decrypt(keyring.encrypt("13812345678")) == "13812345678"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"DATABASE_URL": "sqlite://var/app.sqlite3"}, "DATABASE_URL must point at PostgreSQL"),
        ({"REDIS_URL": ""}, "REDIS_URL must point at Redis"),
        ({"PROVIDERS": "sandbox"}, "PROVIDERS must be 'real'"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short-but-not-default"}, "SECRET_KEY must be set"),
        ({"PII_ENCRYPTION_KEYS": DEV_PII_ENCRYPTION_KEYS, "PII_ACTIVE_KEY_ID": "dev1"}, "PII_ENCRYPTION_KEYS and PII_HASH_KEY"),
        ({"PII_HASH_KEY": DEV_PII_HASH_KEY}, "PII_ENCRYPTION_KEYS and PII_HASH_KEY"),
        ({"RUN_EMBEDDED_WORKERS": "yes"}, "RUN_EMBEDDED_WORKERS must be off"),
        ({"WECHAT_API_BASE": "http://127.0.0.1:8101/"}, "WECHAT_SECRET and WECHAT_API_BASE"),
        ({"WECHAT_SECRET": ""}, "WECHAT_SECRET and WECHAT_API_BASE"),
        ({"WECHAT_PAY_API_KEY": ""}, "WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY"),  # the dev key
        ({"WECHAT_PAY_MCH_ID": ""}, "WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY"),  # the demo merchant
        ({"WECHAT_PAY_API_BASE": "http://127.0.0.1:8101/"}, "WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY"),
        ({"WECHAT_PAY_CERT": ""}, "WECHAT_PAY_MCH_ID, WECHAT_PAY_API_KEY"),
    ],
)
def test_production_refuses_each_unsafe_setting_alone(override, problem):
    message = refusal(production_env(**override))

    assert problem in message
    assert message.count(";") == 0, f"only one problem expected, got: {message}"


def test_bad_app_env_is_refused():
    message = refusal({"APP_ENV": "prod"})

    assert "APP_ENV must be one of dev, test, production" in message
    assert "'prod'" in message


@pytest.mark.parametrize("name", ["PORT", "ACCESS_TOKEN_TTL_SECONDS", "STAFF_MAX_FAILED_LOGINS", "MAX_REQUEST_BYTES", "PAYOUTS_AT_ONCE"])
def test_bad_integers_are_refused_naming_the_variable(name):
    message = refusal({name: "fifteen"})

    assert message == f"{name} must be a whole number, got 'fifteen'"


@pytest.mark.parametrize("name", ["LOG_JSON", "RUN_EMBEDDED_WORKERS"])
def test_bad_booleans_are_refused_naming_the_variable(name):
    message = refusal({name: "maybe"})

    assert message == f"{name} must be true or false, got 'maybe'"


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("YES", True), ("on", True), ("0", False), ("False", False), ("off", False)])
def test_boolean_spellings(raw, expected):
    assert Settings.from_env({"LOG_JSON": raw}).log_json is expected


def test_empty_values_fall_back_to_defaults():
    settings = Settings.from_env({"PORT": "", "LOG_JSON": "", "DATABASE_URL": "", "REDIS_URL": ""})

    assert settings.port == 8000
    assert settings.log_json is True
    assert settings.database_url == EMBEDDED_DATABASE_URL
    assert settings.redis_url is None


def test_unknown_providers_are_refused_in_any_environment():
    assert "PROVIDERS must be sandbox or real, got 'mock'" in refusal({"PROVIDERS": "mock"})


@pytest.mark.parametrize("raw", ["0", "33", "-1"])
def test_payouts_at_once_outside_its_range_is_refused(raw):
    assert f"PAYOUTS_AT_ONCE must be 1 to 32, got {raw}" in refusal({"PAYOUTS_AT_ONCE": raw})


def test_payouts_at_once_sets_the_relay_lane_and_the_wechat_pay_threads():
    from server.handlers import relay_policy
    from server.providers import build_providers

    settings = Settings.from_env({"PAYOUTS_AT_ONCE": "3"})

    assert relay_policy(settings).parallel == {"marketing.pay_reward": 3}
    assert build_providers(settings, redis=None).wechat_pay._executor._max_workers == 3


@pytest.mark.parametrize("scheme", ["postgresql://", "postgresql+asyncpg://", "asyncpg://", "postgres://"])
def test_postgres_urls_are_normalised(scheme):
    settings = Settings.from_env({"DATABASE_URL": f"{scheme}u:p@db:5432/lending"})

    assert settings.database_url == "postgres://u:p@db:5432/lending"
    assert not settings.uses_embedded_database
