"""What marketing needs from outside parties. The composition root hands in implementations (the
wechatpy mini-program client draws mini-program codes)."""

from __future__ import annotations

from typing import Protocol


class MiniProgramCodes(Protocol):
    """WeChat's ``getwxacodeunlimit``: a mini-program code opening ``page`` with ``scene``."""

    async def wxa_code(self, scene: str, page: str, width: int = 430) -> bytes: ...
