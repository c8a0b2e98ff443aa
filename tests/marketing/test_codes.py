"""Invite codes are short, unique and free of characters people confuse, and fit WeChat's scene."""

from __future__ import annotations

import re

import pytest

from marketing import codes
from marketing.codes import ALPHABET, LENGTH, LOOK_ALIKES, InviteLinks


def test_the_alphabet_has_no_look_alikes():
    for confusable in "0OQD1IL2Z5S8BUV":
        assert confusable not in ALPHABET
    assert set(ALPHABET) == set(ALPHABET.upper()), "upper case only: the code is read off posters"
    assert len(set(ALPHABET)) == len(ALPHABET)


def test_codes_are_short_fit_the_wechat_scene_and_use_only_the_alphabet():
    scene = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@._~-]{1,32}$")  # WeChat's rule for getwxacodeunlimit
    for _ in range(2000):
        code = codes.new_code()
        assert len(code) == LENGTH <= 32
        assert scene.match(code)
        assert not set(code) & LOOK_ALIKES


def test_twenty_thousand_codes_are_all_different():
    drawn = [codes.new_code() for _ in range(20_000)]
    assert len(set(drawn)) == len(drawn)


@pytest.mark.parametrize(
    "typed, meant",
    [("ACEFGH34", "ACEFGH34"), ("acefgh34", "ACEFGH34"), (" acef-gh34 ", "ACEFGH34"), ("ACEF GH34", "ACEFGH34")],
)
def test_a_typed_code_is_forgiven_case_spaces_and_dashes(typed, meant):
    assert codes.normalise(typed) == meant


@pytest.mark.parametrize("typed", [None, "", "ACEFGH3", "ACEFGH345", "ACEFGH30", "ACEFGHI4", "ACEF/H34", "税易通税易通税易通"])
def test_what_cannot_be_a_code_is_refused(typed):
    assert codes.normalise(typed) is None


def test_the_deep_link_is_the_mini_program_page_with_the_scene_or_a_configured_https_link():
    assert InviteLinks().deep_link("ACEFGH34") == "pages/index/index?scene=ACEFGH34"
    links = InviteLinks(page="pages/invite/index", url_template="https://m.example-rcb.cn/i?scene={code}")
    assert links.deep_link("ACEFGH34") == "https://m.example-rcb.cn/i?scene=ACEFGH34"
    assert links.page_path("ACEFGH34") == "pages/invite/index?scene=ACEFGH34"
