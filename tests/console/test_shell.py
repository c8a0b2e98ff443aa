"""Signing in to the console, the pages each role sees, and the page headers that keep it safe."""

from __future__ import annotations


def test_sign_in_shows_only_the_pages_of_the_role(console):
    tab = console("hz.reviewer")
    pages = tab.page.get_by_test_id("pages")
    assert pages.get_by_role("link").all_inner_texts() == ["人工审查", "我的营销"]
    tab.screenshot("home-reviewer")


def test_a_wrong_password_is_refused_with_the_servers_message(browser, live):
    from tests.console.conftest import Console

    tab = Console(browser, live)
    try:
        tab.page.goto("/console/")
        form = tab.page.get_by_test_id("sign-in")
        form.locator("input[name=username]").fill("hz.reviewer")
        form.locator("input[name=password]").fill("not-the-password")
        form.get_by_role("button", name="登录").click()
        assert "INVALID_CREDENTIALS" in tab.page.get_by_test_id("error").inner_text()
        assert tab.page.evaluate("sessionStorage.getItem('console.tokens')") is None
    finally:
        tab.close()


def test_a_page_the_role_may_not_use_says_so(console):
    tab = console("hz.reviewer").open("risk.html")
    assert tab.page.get_by_test_id("no-access").is_visible()


def test_signed_out_visitors_are_sent_to_sign_in_and_back(console, browser, live):
    from tests.console.conftest import Console

    tab = Console(browser, live)
    try:
        tab.page.goto("/console/reviews.html")
        tab.page.get_by_test_id("sign-in").wait_for()
        assert "next=reviews.html" in tab.page.url
    finally:
        tab.close()


def test_console_pages_carry_a_strict_content_security_policy(live):
    response = live.http.get("/console/")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert live.http.get("/console").status_code in (301, 302, 307, 308)


def test_a_customer_can_be_set_up_through_the_live_api(live):
    from infra.identity_numbers import make_test_id_number
    from datetime import date

    customer = live.customer(name="赵一", id_number=make_test_id_number("320102", date(1988, 1, 2), 7), phone="13900000007", bank_code="HZRCB")
    me = customer.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["real_name_verified"] is True, me.text
