"""WeChat server APIs: a real httpx client for live mode and a dev stand-in for `make run`."""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import datetime, timedelta
from typing import Any, Protocol, cast
from urllib.parse import urlencode

import httpcore
import httpx
import msgspec

from app import errors
from app.clock import utcnow
from app.http_backend import AsyncioBackend
from app.settings import WeChatSettings, http_address

log = logging.getLogger("daiban.wechat")
# As httpx's client said who was calling, so does each call here (gateways and egress
# filters may turn away a request that names no agent).
_AGENT = (b"User-Agent", b"daiban")
_JSON = (b"Content-Type", b"application/json")

TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
TOKEN_EXPIRED_CODES = {40001, 42001}
# Words that keep a comment from staff: dev mode's stand-in for WeChat's text check, and the
# check of comments written away from the mini-program (a paper rating card, the progress
# page), which have no WeChat identity to ask WeChat with.
BLOCKED_WORDS = ("傻逼", "他妈的", "操你", "去死", "滚蛋", "王八蛋", "畜生", "垃圾东西")


class WeChatSession(msgspec.Struct, frozen=True):
    openid: str
    unionid: str | None = None
    # session_key is deliberately not kept: nothing here needs it and it must never leak.


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatNoAnswer(Exception):
    """The request went out but no answer came back: WeChat may have acted on it."""


class WeChat(Protocol):
    async def code_to_session(self, code: str) -> WeChatSession: ...

    async def phone_number(self, code: str) -> str: ...

    async def send_subscription(
        self, openid: str, template_id: str, page: str, data: dict[str, Any], state: str
    ) -> None: ...

    async def check_text(self, openid: str, content: str) -> str: ...

    async def aclose(self) -> None: ...


def login_error(exc: WeChatError) -> errors.DomainError:
    """The Chinese answer a resident sees when WeChat refuses a login or phone code."""
    if exc.errcode == 40029 or exc.errcode == 40163:
        return errors.WeChatCodeInvalid()
    if exc.errcode == 45011:
        return errors.WeChatRateLimited()
    if exc.errcode == 40226:
        return errors.WeChatUserRisky()
    if exc.errcode == -1:
        return errors.WeChatBusy()
    return errors.WeChatFailed(errcode=exc.errcode)


# LiveWeChat's HTTP connection pools (see its __init__)
POOLS = 16


class LiveWeChat:
    """Talks to the WeChat API host (a setting, so tests point it at a local server).
    `ssl_context`: whom an https host must be vouched for by (by default as httpx does:
    certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR when set)."""

    def __init__(self, settings: WeChatSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        self._settings = settings
        # Calls go straight to httpcore's connection pools (the HTTP engine under httpx,
        # through its public interface for one request): httpx's client and transport
        # around them add what these calls never use (cookies, auth, redirects, event
        # hooks, a URL merged and parsed anew each call, the request and answer copied
        # into httpx's own types). The pools reach the network through asyncio's streams
        # (app/http_backend.py) instead of anyio's, whose cancel scopes and look at every
        # idle connection (two system calls each) cost about a quarter of the client's CPU
        # a message in the delivery job. The calls are spread over several pools: a pool
        # looks over all its connections whenever a request starts or ends, and a
        # delivery worker keeps DAIBAN_SCHEDULER_DELIVERY_CONCURRENCY (64) messages in
        # flight; 16 pools of about 4 connections took a quarter less of a worker's CPU a
        # message than 4 pools of 16 (docs/benchmarks.md). A call goes to the pool with
        # the fewest calls under way, the first of them when all are idle: a quiet
        # service (a login now and then) finds its connection to WeChat still open
        # instead of a new TLS handshake in each of 16 pools in turn.
        context = ssl_context or httpx.create_ssl_context()
        self._pools = [
            httpcore.AsyncConnectionPool(
                ssl_context=context,
                # httpx's default limits
                max_connections=100,
                max_keepalive_connections=20,
                keepalive_expiry=5.0,
                network_backend=AsyncioBackend(),
            )
            for _ in range(POOLS)
        ]
        self._busy = [0] * POOLS  # calls under way in each pool
        # Validated settings have passed this already; tests and benchmarks make theirs.
        base = http_address(settings.base_url.rstrip("/"))
        if base is None:
            raise ValueError(f"not an http(s) address: {settings.base_url!r}")
        self._scheme = base.scheme.encode()
        self._host = cast(str, base.hostname).encode("idna")
        self._port = base.port
        self._prefix = base.path
        host = self._host
        if base.port not in (None, 443 if base.scheme == "https" else 80):
            host += b":%d" % base.port
        self._headers = [(b"Host", host), _AGENT]
        self._timeout = httpx.Timeout(settings.timeout_seconds).as_dict()
        self._token: str | None = None
        self._token_expires_at: datetime = datetime.min.replace(tzinfo=utcnow().tzinfo)
        self._token_lock = asyncio.Lock()
        self._urls_token: str | None = None
        self._token_urls: dict[str, httpcore.URL] = {}  # by path, with _urls_token

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    def _url(self, path: str, params: dict[str, str] | None) -> httpcore.URL:
        """The address of a call: those made with the access token alone are built once
        per token (every message is one)."""
        if params is None or params.keys() != {"access_token"}:
            return self._new_url(path, params)
        if params["access_token"] != self._urls_token:
            self._urls_token, self._token_urls = params["access_token"], {}
        url = self._token_urls.get(path)
        if url is None:
            url = self._token_urls[path] = self._new_url(path, params)
        return url

    def _new_url(self, path: str, params: dict[str, str] | None) -> httpcore.URL:
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        return httpcore.URL(
            scheme=self._scheme, host=self._host, port=self._port, target=target.encode()
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        once: bool = False,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`once`: the call must not be repeated blindly (a message): when the request may
        have reached WeChat but no answer came, raise WeChatNoAnswer instead."""
        headers = self._headers
        content = b""
        if json is not None:
            content = msgspec.json.encode(json)
            headers = [*headers, _JSON, (b"Content-Length", b"%d" % len(content))]
        request = httpcore.Request(
            method.encode(),
            self._url(path, params),
            headers=headers,
            content=content,
            extensions={"timeout": self._timeout},
        )
        pool = min(range(POOLS), key=self._busy.__getitem__)
        self._busy[pool] += 1
        try:
            response = await self._pools[pool].handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except (httpcore.ConnectError, httpcore.ConnectTimeout, httpcore.PoolTimeout):
            log.warning("wechat unreachable", extra={"path": path})
            raise errors.WeChatUnavailable() from None
        except (httpcore.TimeoutException, httpcore.RemoteProtocolError, httpcore.ReadError):
            log.warning("wechat gave no answer", extra={"path": path})
            if once:
                raise WeChatNoAnswer(path) from None
            raise errors.WeChatUnavailable() from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            log.warning("wechat transport error", extra={"path": path, "error": type(exc).__name__})
            raise errors.WeChatUnavailable() from None
        finally:
            self._busy[pool] -= 1
        if response.status >= 500:
            raise errors.WeChatUnavailable()
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise errors.WeChatFailed() from None
        if not isinstance(data, dict):
            raise errors.WeChatFailed()
        try:
            errcode = int(data.get("errcode") or 0)
        except (TypeError, ValueError):
            raise errors.WeChatFailed() from None
        if errcode:
            raise WeChatError(errcode, str(data.get("errmsg", "")))
        return data

    async def code_to_session(self, code: str) -> WeChatSession:
        params = {
            "appid": self._settings.app_id,
            "secret": self._settings.app_secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        try:
            data = await self._call("GET", "/sns/jscode2session", params=params)
        except WeChatError as exc:
            log.info("code2session refused", extra={"errcode": exc.errcode})
            raise login_error(exc) from None
        if not data.get("openid"):
            raise errors.WeChatFailed()
        return WeChatSession(openid=str(data["openid"]), unionid=data.get("unionid"))

    async def access_token(self, *, force_refresh: bool = False) -> str:
        """The stable access token, cached per process and refreshed 5 minutes early."""
        async with self._token_lock:
            if not force_refresh and self._token and utcnow() < self._token_expires_at:
                return self._token
            body = {
                "grant_type": "client_credential",
                "appid": self._settings.app_id,
                "secret": self._settings.app_secret,
                "force_refresh": force_refresh,
            }
            try:
                data = await self._call("POST", "/cgi-bin/stable_token", json=body)
            except WeChatError as exc:
                raise errors.WeChatFailed(errcode=exc.errcode) from None
            self._token = str(data["access_token"])
            lifetime = timedelta(seconds=int(data.get("expires_in", 7200)))
            self._token_expires_at = utcnow() + lifetime - TOKEN_REFRESH_MARGIN
            return self._token

    async def call_with_token(
        self, path: str, body: dict[str, Any], *, once: bool = False
    ) -> dict[str, Any]:
        """POST with the access token; on 40001/42001 refresh it once and retry."""
        token = await self.access_token()
        try:
            return await self._call(
                "POST", path, once=once, params={"access_token": token}, json=body
            )
        except WeChatError as exc:
            if exc.errcode not in TOKEN_EXPIRED_CODES:
                raise
        token = await self.access_token(force_refresh=True)
        return await self._call("POST", path, once=once, params={"access_token": token}, json=body)

    async def check_text(self, openid: str, content: str) -> str:
        """msgSecCheck (v2) of text a person wrote: "pass", "review" or "risky"."""
        body = {"content": content, "version": 2, "scene": 2, "openid": openid}
        try:
            data = await self.call_with_token("/wxa/msg_sec_check", body)
        except WeChatError as exc:
            raise errors.WeChatFailed(errcode=exc.errcode) from None
        return str((data.get("result") or {}).get("suggest", "review"))

    async def send_subscription(
        self, openid: str, template_id: str, page: str, data: dict[str, Any], state: str
    ) -> None:
        """A one-time subscription message; WeChatError carries WeChat's refusal (43101…)."""
        body = {
            "touser": openid,
            "template_id": template_id,
            "page": page,
            "data": data,
            "miniprogram_state": state,
            "lang": "zh_CN",
        }
        await self.call_with_token("/cgi-bin/message/subscribe/send", body, once=True)

    async def phone_number(self, code: str) -> str:
        try:
            data = await self.call_with_token("/wxa/business/getuserphonenumber", {"code": code})
        except WeChatError as exc:
            raise login_error(exc) from None
        info = data.get("phone_info") or {}
        if info.get("countryCode", "86") != "86" or not info.get("purePhoneNumber"):
            raise errors.InvalidInput("暂只支持中国大陆手机号")
        return str(info["purePhoneNumber"])


def local_text_verdict(content: str) -> str:
    """msgSecCheck's "suggest" by the local word list: "risky" or "pass"."""
    return "risky" if any(word in content for word in BLOCKED_WORDS) else "pass"


class DevWeChat:
    """Dev mode: `dev:<name>` logs in as openid `dev_<name>`; `dev:<phone>` is a phone code."""

    PREFIX = "dev:"

    async def code_to_session(self, code: str) -> WeChatSession:
        name = code.removeprefix(self.PREFIX)
        if not code.startswith(self.PREFIX) or not name or len(name) > 40:
            raise errors.WeChatCodeInvalid("开发模式请使用 dev:<名字> 登录")
        return WeChatSession(openid=f"dev_{name}")

    async def phone_number(self, code: str) -> str:
        phone = code.removeprefix(self.PREFIX)
        if not code.startswith(self.PREFIX) or not phone:
            raise errors.WeChatCodeInvalid("开发模式请使用 dev:<手机号>")
        return phone

    async def send_subscription(
        self, openid: str, template_id: str, page: str, data: dict[str, Any], state: str
    ) -> None:
        log.info(
            "wechat (dev) subscription message",
            extra={"touser": openid, "template": template_id, "page": page, "data": data},
        )

    async def check_text(self, openid: str, content: str) -> str:
        """Dev mode's stand-in for msgSecCheck: a short local word list."""
        return local_text_verdict(content)

    async def aclose(self) -> None:
        return None


def build_wechat(settings: WeChatSettings) -> WeChat:
    return DevWeChat() if settings.mode == "dev" else LiveWeChat(settings)
