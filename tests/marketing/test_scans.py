"""Recording a scan: anonymous, limited per device and per network (429 with Retry-After), and
keeping neither the device id nor the address — only keyed hashes."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest

from infra import pii, rate_limit
from marketing import service as invites
from marketing.models import InviteTouch
from tests.marketing.support import device, staff_code

FROZEN = 1_780_000_040.0  # 20 s into a minute: no window boundary falls inside a test


@pytest.fixture
def frozen_time(monkeypatch):
    monkeypatch.setattr(rate_limit, "time", SimpleNamespace(time=lambda: FROZEN))


async def scan(client, code: str, *, device_id: str | None = None, channel: str = "wxacode", ip: str | None = None):
    headers = {"X-Forwarded-For": ip} if ip else {}
    body = {"channel": channel, **({"device_id": device_id} if device_id else {})}
    _, response = await client.post(f"/api/v1/invite-codes/{code}/scans", json=body, headers=headers)
    return response


async def test_a_scan_is_recorded_without_a_sign_in_and_names_the_bank(client, demo):
    code = (await staff_code("hz.manager")).code

    response = await scan(client, code.lower(), device_id=device(), channel="poster")

    assert response.status == 201, response.text
    assert response.json == {"code": code, "owner_kind": "staff", "bank": {"id": response.json["bank"]["id"], "name": "河州农商银行"}}
    touch = await InviteTouch.get(invite_code__code=code)
    assert (touch.channel, touch.customer_id) == ("poster", None)


async def test_an_unknown_code_is_not_found(client, demo):
    response = await scan(client, "ACEFGH34", device_id=device())

    assert response.status == 404
    assert response.json["error"]["code"] == "INVITE_CODE_NOT_FOUND"


async def test_an_unknown_channel_is_refused(client, demo):
    code = (await staff_code("hz.manager")).code

    response = await scan(client, code, channel="billboard")

    assert response.status == 422


async def test_a_device_past_its_limit_gets_429_with_retry_after(client, demo, frozen_time):
    code = (await staff_code("hz.manager")).code
    phone = device()
    per_minute = invites.DEFAULT_SCAN_LIMITS.per_device[0].requests

    for _ in range(per_minute):
        assert (await scan(client, code, device_id=phone)).status == 201
    refused = await scan(client, code, device_id=phone)
    another_device = await scan(client, code, device_id=device())

    assert refused.status == 429
    assert refused.json["error"]["code"] == "RATE_LIMITED"
    assert refused.headers["retry-after"] == "41"  # the rest of the minute, and a second
    assert another_device.status == 201, "the limit is the device's, not everyone's"
    assert await InviteTouch.all().count() == per_minute + 1


async def test_an_address_past_its_limit_gets_429_whatever_the_device(app, client, demo, frozen_time, monkeypatch):
    # Behind the load balancer the client's address is the one it forwards.
    monkeypatch.setitem(app.config, "PROXIES_COUNT", 1)
    code = (await staff_code("hz.manager")).code
    per_minute = invites.DEFAULT_SCAN_LIMITS.per_address[0].requests

    for _ in range(per_minute):
        assert (await scan(client, code, device_id=device(), ip="198.51.100.7")).status == 201
    refused = await scan(client, code, device_id=device(), ip="198.51.100.7")
    neighbour = await scan(client, code, device_id=device(), ip="198.51.100.8")

    assert refused.status == 429
    assert refused.headers["retry-after"] == "41"
    assert neighbour.status == 201, "the limit is the address's, not its network's"


async def test_guessing_codes_counts_against_the_limit_too(client, demo, frozen_time):
    phone = device()
    per_minute = invites.DEFAULT_SCAN_LIMITS.per_device[0].requests

    statuses = [(await scan(client, f"ACEFGH{n}{n}", device_id=phone)).status for n in (3, 4, 6, 7, 9, 3, 4, 6, 7, 9, 3)]

    assert statuses == [404] * per_minute + [429]


async def test_scans_fail_closed_when_redis_is_down(client, demo, monkeypatch):
    code = (await staff_code("hz.manager")).code

    async def redis_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(rate_limit, "hit", redis_down)
    response = await scan(client, code, device_id=device())

    assert response.status == 503
    assert response.json["error"]["code"] == "SCAN_COUNTING_UNAVAILABLE"
    assert "retry-after" in response.headers
    assert await InviteTouch.all().count() == 0


async def test_neither_the_device_id_nor_the_address_is_stored(demo, redis, settings):
    code = (await staff_code("hz.manager")).code
    install_id = device()

    scanned = await invites.record_scan(redis, code, channel="qr", device_id=install_id, ip="203.0.113.77", key_prefix=settings.redis_key_prefix)

    touch = await InviteTouch.get(id=scanned.touch.id)
    stored = str(await InviteTouch.filter(id=touch.id).values())
    assert install_id not in stored and "203.0.113" not in stored
    assert touch.device_hash == pii.lookup_hash("device_id", install_id)
    # The network, not the address: a neighbour on the same /24 hashes alike, another network not.
    assert touch.network_hash == invites.network_hash("203.0.113.5") == pii.lookup_hash("ip_network", str(ipaddress.ip_network("203.0.113.0/24")))
    assert touch.network_hash != invites.network_hash("203.0.114.77")
    assert invites.network_hash("2001:db8:1:2::1") == invites.network_hash("2001:db8:1:ffff::9")
    assert invites.network_hash("not an address") is None
    keys = [key async for key in redis.scan_iter(match=settings.redis_key_prefix + "mkt:scan:*")]
    assert keys and not any(b"203.0.113" in key or install_id.encode() in key for key in keys)


async def test_a_scan_without_device_or_readable_address_is_still_counted(demo, redis, settings, frozen_time):
    code = (await staff_code("hz.manager")).code
    per_minute = invites.DEFAULT_SCAN_LIMITS.per_address[0].requests

    for _ in range(per_minute):
        await invites.record_scan(redis, code, channel="link", device_id=None, ip="mockserver", key_prefix=settings.redis_key_prefix)
    with pytest.raises(rate_limit.RateLimited):
        await invites.record_scan(redis, code, channel="link", device_id=None, ip="mockserver", key_prefix=settings.redis_key_prefix)
