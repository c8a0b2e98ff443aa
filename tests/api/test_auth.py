"""Staff sign-in, lockout, rotating refresh tokens, and what the bearer checks refuse."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import jwt
import pytest

from channels import sessions
from channels.models import AuthSession
from infra import clock, pii
from infra.actors import Actor
from infra.audit import AuditEntry
from lending_core.customers.models import BankRelationship
from lending_core.org import passwords
from lending_core.org.models import Staff
from server.demo_data import DEMO_PASSWORD
from tests.support import bearer, customer_token, staff_token

LOGIN = "/api/v1/staff/login"
REFRESH = "/api/v1/staff/refresh"
LOGOUT = "/api/v1/staff/logout"
STAFF_ME = "/api/v1/staff/me"
CUSTOMER_ME = "/api/v1/me"


async def login(client, username: str = "hz.admin", password: str = DEMO_PASSWORD):
    _, response = await client.post(LOGIN, json={"username": username, "password": password})
    return response


async def refresh(client, refresh_token: str):
    _, response = await client.post(REFRESH, json={"refresh_token": refresh_token})
    return response


async def staff_me(client, access_token: str):
    _, response = await client.get(STAFF_ME, headers=bearer(access_token))
    return response


def error_code(response) -> str:
    return response.json["error"]["code"]


def signed(claims: dict, secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def staff_claims(staff_id: int, *, expires_in: int = 600, audience: str = "staff") -> dict:
    now = int(clock.now().timestamp())
    return {"aud": audience, "sub": str(staff_id), "iat": now, "exp": now + expires_in}


# --- sign-in -----------------------------------------------------------------------------------


async def test_login_returns_a_token_pair_and_the_masked_profile(client, settings, demo):
    response = await login(client)

    assert response.status == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["access_token"] and body["refresh_token"]
    staff = await Staff.get(username="hz.admin")
    assert body["staff"]["id"] == staff.id
    assert body["staff"]["username"] == "hz.admin"
    assert body["staff"]["roles"] == ["bank_admin"]
    assert body["staff"]["name"] == pii.mask_name(staff.name)
    assert body["staff"]["name"] != staff.name
    assert staff.name not in response.text
    assert "password" not in response.text
    assert (await staff_me(client, body["access_token"])).json["username"] == "hz.admin"


async def test_wrong_password_and_unknown_username_are_refused_alike(client, demo):
    wrong_password = await login(client, password="Wrong-pass-2026")
    unknown_user = await login(client, username="hz.nobody")

    assert (wrong_password.status, error_code(wrong_password)) == (401, "INVALID_CREDENTIALS")
    assert (unknown_user.status, error_code(unknown_user)) == (401, "INVALID_CREDENTIALS")
    assert wrong_password.json["error"]["message"] == unknown_user.json["error"]["message"]
    assert "refresh_token" not in wrong_password.json


async def test_account_locks_after_the_maximum_failures_even_for_the_right_password(client, settings, demo):
    for _ in range(settings.staff_max_failed_logins):
        failed = await login(client, password="Wrong-pass-2026")
        assert (failed.status, error_code(failed)) == (401, "INVALID_CREDENTIALS")

    locked = await login(client)

    assert locked.status == 423
    assert error_code(locked) == "ACCOUNT_LOCKED"
    assert 1 <= int(locked.headers["Retry-After"]) <= settings.staff_lockout_seconds + 1
    assert "access_token" not in locked.json
    staff = await Staff.get(username="hz.admin")
    assert await AuditEntry.filter(action="staff.locked", object_type="staff", object_id=str(staff.id)).count() == 1
    assert (await login(client, password="Wrong-pass-2026")).status == 423
    # Other staff are not affected.
    assert (await login(client, username="hz.admin2")).status == 200


async def test_concurrent_wrong_passwords_still_lock_the_account(client, settings, demo):
    guesses = [login(client, password=f"Wrong-pass-{n}") for n in range(settings.staff_max_failed_logins)]

    results = await asyncio.gather(*guesses)

    assert [r.status for r in results] == [401] * settings.staff_max_failed_logins
    locked = await login(client)
    assert locked.status == 423, "the right password still signs in after the maximum failures"
    assert error_code(locked) == "ACCOUNT_LOCKED"


async def test_a_successful_login_resets_the_failure_count(client, settings, demo):
    for _ in range(settings.staff_max_failed_logins - 1):
        assert (await login(client, password="Wrong-pass-2026")).status == 401
    assert (await login(client)).status == 200

    for _ in range(settings.staff_max_failed_logins - 1):
        assert (await login(client, password="Wrong-pass-2026")).status == 401

    assert (await login(client)).status == 200
    assert await AuditEntry.filter(action="staff.locked").count() == 0


async def test_login_works_again_once_the_lock_has_expired(client, settings, demo):
    for _ in range(settings.staff_max_failed_logins):
        await login(client, password="Wrong-pass-2026")
    assert (await login(client)).status == 423

    await Staff.filter(username="hz.admin").update(locked_until=clock.now() - timedelta(seconds=1))

    assert (await login(client)).status == 200
    staff = await Staff.get(username="hz.admin")
    assert (staff.failed_logins, staff.locked_until) == (0, None)


async def test_a_disabled_account_cannot_sign_in(client, demo):
    await Staff.filter(username="hz.admin").update(is_active=False)

    response = await login(client)

    assert (response.status, error_code(response)) == (403, "ACCOUNT_DISABLED")


# --- refresh tokens ----------------------------------------------------------------------------


async def test_refresh_rotates_the_pair(client, demo):
    first = (await login(client)).json

    rotated = await refresh(client, first["refresh_token"])

    assert rotated.status == 200
    second = rotated.json
    assert second["refresh_token"] != first["refresh_token"]
    assert (await staff_me(client, second["access_token"])).status == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status == 200


async def test_a_spent_refresh_token_is_refused(client, demo):
    first = (await login(client)).json
    assert (await refresh(client, first["refresh_token"])).status == 200

    again = await refresh(client, first["refresh_token"])

    assert (again.status, error_code(again)) == (401, "REFRESH_REFUSED")


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(client, demo):
    first = (await login(client)).json
    second = (await refresh(client, first["refresh_token"])).json
    other_sign_in = (await login(client)).json

    assert (await refresh(client, first["refresh_token"])).status == 401

    newest = await refresh(client, second["refresh_token"])
    assert (newest.status, error_code(newest)) == (401, "REFRESH_REFUSED")
    # A separate sign-in is another family and keeps working.
    assert (await refresh(client, other_sign_in["refresh_token"])).status == 200


async def test_unknown_refresh_token_is_refused(client, demo):
    response = await refresh(client, "not-a-refresh-token")

    assert (response.status, error_code(response)) == (401, "REFRESH_REFUSED")


async def test_logout_revokes_the_refresh_token(client, demo):
    pair = (await login(client)).json

    _, response = await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})

    assert response.status == 204
    refused = await refresh(client, pair["refresh_token"])
    assert (refused.status, error_code(refused)) == (401, "REFRESH_REFUSED")


async def test_an_expired_refresh_token_is_refused(client, demo):
    pair = (await login(client)).json
    await AuthSession.all().update(expires_at=clock.now() - timedelta(seconds=1))

    response = await refresh(client, pair["refresh_token"])

    assert (response.status, error_code(response)) == (401, "REFRESH_REFUSED")


# --- the bearer check --------------------------------------------------------------------------


async def test_a_disabled_staff_member_is_refused_with_a_still_valid_token(client, demo):
    pair = (await login(client)).json
    assert (await staff_me(client, pair["access_token"])).status == 200

    await Staff.filter(username="hz.admin").update(is_active=False)

    response = await staff_me(client, pair["access_token"])
    assert (response.status, error_code(response)) == (401, "INVALID_CREDENTIALS")
    _, admin_route = await client.get("/api/v1/admin/staff", headers=bearer(pair["access_token"]))
    assert admin_route.status == 401
    assert (await refresh(client, pair["refresh_token"])).status == 401


async def test_a_staff_token_is_not_a_customer_token(client, demo):
    token = await staff_token(client, "hz.admin")

    _, response = await client.get(CUSTOMER_ME, headers=bearer(token))

    assert (response.status, error_code(response)) == (401, "TOKEN_INVALID")


async def test_a_customer_token_is_not_a_staff_token(client, app, demo):
    relationship = await BankRelationship.all().order_by("id").first()
    token = await customer_token(app, relationship.customer_id, relationship.bank_id)
    _, as_customer = await client.get(CUSTOMER_ME, headers=bearer(token))
    assert as_customer.status == 200

    _, response = await client.get(STAFF_ME, headers=bearer(token))

    assert (response.status, error_code(response)) == (401, "TOKEN_INVALID")


async def test_a_customer_refresh_token_cannot_refresh_a_staff_session(client, app, demo):
    relationship = await BankRelationship.all().order_by("id").first()
    pair = await sessions.start_session(
        Actor(kind="customer", id=relationship.customer_id, bank_id=relationship.bank_id),
        channel="wechat_miniprogram",
        policy=app.ctx.token_policy,
    )

    response = await refresh(client, pair.refresh_token)

    assert (response.status, error_code(response)) == (401, "REFRESH_REFUSED")


async def test_a_token_signed_with_another_secret_is_invalid(client, app, demo):
    staff = await Staff.get(username="hz.admin")
    forged = signed(staff_claims(staff.id), "another-secret-" + "x" * 40)
    assert app.ctx.token_policy.secret_key != "another-secret-" + "x" * 40

    response = await staff_me(client, forged)

    assert (response.status, error_code(response)) == (401, "TOKEN_INVALID")


async def test_an_unsigned_token_is_invalid(client, demo):
    staff = await Staff.get(username="hz.admin")
    unsigned = jwt.encode(staff_claims(staff.id), None, algorithm="none")

    response = await staff_me(client, unsigned)

    assert (response.status, error_code(response)) == (401, "TOKEN_INVALID")


async def test_an_expired_token_is_refused_as_expired(client, app, demo):
    staff = await Staff.get(username="hz.admin")
    expired = signed(staff_claims(staff.id, expires_in=-60), app.ctx.token_policy.secret_key)

    response = await staff_me(client, expired)

    assert (response.status, error_code(response)) == (401, "TOKEN_EXPIRED")


async def test_a_correctly_signed_token_of_our_own_making_is_accepted(client, app, demo):
    """The control for the two tests above: only the secret or the expiry differs."""
    staff = await Staff.get(username="hz.admin")
    token = signed(staff_claims(staff.id), app.ctx.token_policy.secret_key)

    assert (await staff_me(client, token)).status == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic aHouYWRtaW46eA==", "Bearer not.a.jwt"],
    ids=["missing", "empty", "no-token", "blank-token", "basic", "garbage"],
)
async def test_a_missing_or_malformed_bearer_is_invalid(client, demo, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    _, response = await client.get(STAFF_ME, headers=headers)

    assert (response.status, error_code(response)) == (401, "TOKEN_INVALID")


# --- password storage --------------------------------------------------------------------------


async def test_demo_passwords_are_stored_as_scrypt_hashes(demo):
    staff = await Staff.get(username="hz.admin")

    assert staff.password_hash.startswith("scrypt$")
    assert staff.password_hash != DEMO_PASSWORD
    assert DEMO_PASSWORD not in staff.password_hash
    assert passwords.verify_password(DEMO_PASSWORD, staff.password_hash)
    assert not passwords.verify_password("Wrong-pass-2026", staff.password_hash)


async def test_passwords_set_through_the_api_are_salted_scrypt_hashes(client, demo):
    headers = bearer(await staff_token(client, "hz.admin"))
    password = "Brand-new-pass-2026"
    for username in ("hz.first", "hz.second"):
        body = {"username": username, "name": "新员工", "roles": ["account_manager"], "password": password}
        _, response = await client.post("/api/v1/admin/staff", json=body, headers=headers)
        assert response.status == 201
        assert password not in response.text

    first, second = [await Staff.get(username=u) for u in ("hz.first", "hz.second")]
    for staff in (first, second):
        assert staff.password_hash.startswith("scrypt$")
        assert password not in staff.password_hash
    assert first.password_hash != second.password_hash
    assert (await login(client, "hz.first", password)).status == 200

