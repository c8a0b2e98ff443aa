"""The WeChat mini-program client: wechatpy (synchronous, so every call runs in a thread), with
base URLs from settings so tests and the demo talk to ``fakes.wechat``.

The access token is shared by every worker through Redis and refreshed before it expires; one
worker refreshes at a time (a short Redis lock), the others wait briefly for its result. Redis
being down costs only caching: the client then fetches a token itself. A token WeChat calls
invalid or expired (40001/42001) is dropped and the call retried once with a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatWxaCrypto
from wechatpy.exceptions import WeChatClientException

from channels.ports import WeChatRefused, WeChatSession, WeChatUnavailable

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 41001, 42001}
# WeChat's "try again" answers: system busy, rate limits.
BUSY_ERRORS = {-1, 45009, 45011}
REFRESH_MARGIN_SECONDS = 300
LOCK_SECONDS = 10
THREADS = 32


class _Client(WeChatClient):
    """wechatpy's client with every base URL pointed at ``base_url`` and no silent retries of its
    own (token refresh is ours, through Redis)."""

    def __init__(self, appid: str, secret: str, base_url: str, timeout: float, access_token: str | None):
        super().__init__(appid, secret, access_token=access_token, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url + "cgi-bin/"
        self.wxa.API_BASE_URL = base_url
        self.message.API_BASE_URL = base_url + "cgi-bin/"
        self._base_url = base_url

    def fetch_access_token(self):
        # wechatpy hard-codes api.weixin.qq.com here.
        return self._fetch_access_token(
            url=self._base_url + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class WeChatpyMiniProgram:
    def __init__(self, *, appid: str, secret: str, base_url: str, timeout: float, redis, key_prefix: str):
        self.appid = appid
        self._secret = secret
        self._base_url = base_url
        self._timeout = timeout
        self._redis = redis
        self._token_key = f"{key_prefix}wechat:token:{appid}"
        self._local_token: tuple[str, float] | None = None  # used when Redis is down
        # wechatpy blocks: its calls run on threads of their own, enough for many logins at once.
        self._executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="wechat")
        self._threads = threading.local()

    # ---- the API ------------------------------------------------------------------------------

    async def code_to_session(self, code: str) -> WeChatSession:
        # jscode2session authenticates with the app secret, not an access token.
        result = await self._call(lambda client: client.wxa.code_to_session(code), access_token=None)
        return WeChatSession(openid=result["openid"], unionid=result.get("unionid"), session_key=result["session_key"])

    async def phone_number(self, code: str) -> str:
        result = await self._with_token(lambda client: client.wxa._post("wxa/business/getuserphonenumber", data={"code": code}))
        return result["phone_info"]["purePhoneNumber"]

    async def send_subscribe_message(self, openid: str, template_id: str, data: dict, page: str | None) -> None:
        await self._with_token(lambda client: client.wxa.send_subscribe_message(openid, template_id, data, page=page))

    async def wxa_code(self, scene: str, page: str, width: int = 430) -> bytes:
        result = await self._with_token(
            lambda client: client.wxa._post(
                "wxa/getwxacodeunlimit", data={"scene": scene, "page": page, "width": width, "check_path": False}
            )
        )
        # Success is the image itself; wechatpy hands back the raw response when it is not JSON.
        return result.content

    def decrypt_phone(self, session_key: str, encrypted_data: str, iv: str) -> str:
        try:
            data = WeChatWxaCrypto(session_key, iv, self.appid).decrypt_message(encrypted_data)
            return data["purePhoneNumber"]
        except Exception:  # wrong key, iv, padding, JSON or app id: all mean "cannot open"
            raise WeChatRefused(-41003, "the encrypted phone data cannot be opened with this session") from None

    # ---- plumbing -----------------------------------------------------------------------------

    async def _with_token(self, call):
        token = await self.access_token()
        try:
            return await self._call(call, access_token=token)
        except _TokenRejected:
            await self._forget(token)
        try:
            return await self._call(call, access_token=await self.access_token())
        except _TokenRejected:
            # A fresh token refused as well: WeChat is not in a state we can work with now.
            raise WeChatUnavailable("WeChat refused a fresh access token; try again shortly") from None

    def _client(self, access_token: str | None) -> _Client:
        # One wechatpy client per thread, so its requests.Session keeps connections to WeChat alive.
        client = getattr(self._threads, "client", None)
        if client is None:
            client = self._threads.client = _Client(self.appid, self._secret, self._base_url, self._timeout, None)
        # Our token, never wechatpy's own refresh: it would bypass the shared Redis cache.
        client.session.set(client.access_token_key, access_token or "none")
        client.expires_at = None
        return client

    async def _run(self, function):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def _call(self, call, *, access_token: str | None):
        try:
            return await self._run(lambda: call(self._client(access_token)))
        except WeChatClientException as exc:
            errcode = exc.errcode
            if errcode in TOKEN_ERRORS:
                raise _TokenRejected() from exc
            if errcode is None or errcode in BUSY_ERRORS:
                raise WeChatUnavailable("WeChat is busy or unreachable; try again shortly") from None
            log.info("wechat refused", extra={"errcode": errcode})
            raise WeChatRefused(errcode) from None
        except requests.RequestException:
            raise WeChatUnavailable("WeChat did not answer in time; try again shortly") from None

    async def access_token(self) -> str:
        cached = await self._cached_token()
        if cached:
            return cached
        if not await self._try(self._redis.set(self._token_key + ":lock", "1", nx=True, ex=LOCK_SECONDS), default=True):
            # Another worker is refreshing: wait for its token rather than invalidating it.
            for _ in range(20):
                await asyncio.sleep(0.1)
                if cached := await self._cached_token():
                    return cached
        return await self._refresh()

    async def _refresh(self) -> str:
        try:
            result = await self._run(lambda: self._client(None).fetch_access_token())
        except WeChatClientException as exc:
            if exc.errcode in (40013, 40125, 40164):
                log.error("wechat refused our app credentials", extra={"errcode": exc.errcode})
            raise WeChatUnavailable("WeChat did not give us an access token; try again shortly") from None
        except requests.RequestException:
            raise WeChatUnavailable("WeChat did not answer in time; try again shortly") from None
        finally:
            # Success or not, let the next caller try: a held lock would make everyone wait.
            await self._try(self._redis.delete(self._token_key + ":lock"))
        token, expires_in = result["access_token"], int(result.get("expires_in", 7200))
        ttl = max(expires_in - REFRESH_MARGIN_SECONDS, 60)
        self._local_token = (token, time.monotonic() + ttl)
        await self._try(self._redis.set(self._token_key, token, ex=ttl))
        return token

    async def _cached_token(self) -> str | None:
        value = await self._try(self._redis.get(self._token_key))
        if value:
            return value.decode() if isinstance(value, bytes) else value
        if self._local_token and self._local_token[1] > time.monotonic():
            return self._local_token[0]
        return None

    async def _forget(self, token: str) -> None:
        if self._local_token and self._local_token[0] == token:
            self._local_token = None
        cached = await self._cached_token()
        if cached == token:
            await self._try(self._redis.delete(self._token_key))

    @staticmethod
    async def _try(awaitable, default=None):
        """Redis is a cache here: when it fails, carry on without it."""
        try:
            return await awaitable
        except Exception:
            log.warning("redis unavailable for the wechat token cache")
            return default


class _TokenRejected(Exception):
    pass
