"""Invite codes and the links they travel in. Pure: no database, no network.

A code is read aloud, typed from a poster and carried in WeChat's ``scene`` (at most 32
characters of ``[0-9A-Za-z!#$&'()*+,/:;=?@._~-]``), so it is short, upper case and free of
characters people confuse: 0/O/Q/D, 1/I/L/J… (see ``ALPHABET``). Twenty-one symbols and eight
places give 3.8e10 codes: a random guess hits one of a million issued codes once in 38,000 tries,
and scans are rate-limited per device and network.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote

# Left out: 0 O Q D (round), 1 I L (strokes), 2 Z, 5 S, 8 B, U V (pairs people mix up).
ALPHABET = "34679ACEFGHJKMNPRTWXY"
LOOK_ALIKES = frozenset("0OQD1IL2Z5S8BUV")
LENGTH = 8
WECHAT_SCENE_MAX = 32
DEFAULT_PAGE = "pages/index/index"

assert not LOOK_ALIKES & set(ALPHABET) and LENGTH <= WECHAT_SCENE_MAX


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str | None) -> str | None:
    """The code a person meant, or None if it cannot be one of ours: case, spaces and dashes are
    forgiven (a code read off a poster is often typed as ``acef-gh34``)."""
    if not text:
        return None
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code


@dataclass(frozen=True)
class InviteLinks:
    """Where a code leads. ``page`` is the mini-program page that reads ``scene``; ``url_template``
    (e.g. ``https://m.example-rcb.cn/i?scene={code}``, registered in the mini-program console
    under "scan ordinary QR codes to open the mini-program") is what a plain QR carries when set.
    Without it the plain QR carries the page path, which the demo mini-program stub understands."""

    page: str = DEFAULT_PAGE
    url_template: str | None = None

    def page_path(self, code: str) -> str:
        return f"{self.page}?scene={quote(code, safe='')}"

    def deep_link(self, code: str) -> str:
        if self.url_template:
            return self.url_template.format(code=quote(code, safe=""))
        return self.page_path(code)
