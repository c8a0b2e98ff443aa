"""The SMS sandbox: an inbox per phone for tests and the demo, a bounded memory, the fault
switch, logs without the phone in clear or the code, and the contract with ``ports.SmsSender``."""

from __future__ import annotations

import inspect
import logging
import typing

import pytest

from infra.identity_numbers import InvalidPhone
from integrations.sms_sandbox import SandboxSms
from lending_core.contracts import ports

PHONE = "13812345678"


async def test_the_last_code_can_be_read_back():
    sms = SandboxSms()
    assert sms.last_text(PHONE) is None
    await sms.send(PHONE, "您的签约验证码为 482913，5分钟内有效。")
    await sms.send("15951234562", "验证码 000111")
    assert sms.last_text(PHONE) == "您的签约验证码为 482913，5分钟内有效。"
    assert sms.last_text("15951234562") == "验证码 000111"


async def test_one_inbox_per_number_however_it_is_written():
    sms = SandboxSms()
    await sms.send("+86 138-1234-5678", "验证码 123456")
    assert sms.last_text(PHONE) == "验证码 123456"
    assert sms.texts("0086 13812345678") == ["验证码 123456"]


async def test_only_the_last_messages_are_kept():
    sms = SandboxSms(keep=3)
    for code in range(5):
        await sms.send(PHONE, f"验证码 {code}")
    assert sms.texts(PHONE) == ["验证码 2", "验证码 3", "验证码 4"]


async def test_an_unavailable_gateway_sends_nothing():
    sms = SandboxSms()
    sms.available = False
    with pytest.raises(ports.SmsUnavailable):
        await sms.send(PHONE, "验证码 123456")
    assert sms.last_text(PHONE) is None


async def test_not_a_mobile_number_is_refused():
    with pytest.raises(InvalidPhone):
        await SandboxSms().send("12345", "验证码 123456")


async def test_the_log_shows_neither_the_phone_nor_the_code(caplog):
    caplog.set_level(logging.INFO, logger="integrations.sms_sandbox")
    await SandboxSms().send(PHONE, "验证码 482913")
    (record,) = [r for r in caplog.records if r.name == "integrations.sms_sandbox"]
    assert record.phone == "138****5678"
    everything = repr(vars(record)) + record.getMessage()
    assert PHONE not in everything and "482913" not in everything


async def test_the_sandbox_honours_the_protocol():
    promised, implemented = ports.SmsSender.send, SandboxSms.send
    assert inspect.iscoroutinefunction(implemented)
    assert inspect.signature(implemented).parameters.keys() == inspect.signature(promised).parameters.keys()
    assert typing.get_type_hints(implemented) == typing.get_type_hints(promised)
    assert issubclass(ports.SmsUnavailable, ports.DependencyUnavailable)
