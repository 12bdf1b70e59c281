"""Build the python-telegram-bot client from settings values.

One place decides the HTTP pool and timeouts, and honours ``DASH_TELEGRAM_API_BASE`` (the
``base_url`` PTB appends the token to), so tests point the real client at the fake Bot API.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from typing import Any

import aiohttp
import httpx
import telegram
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

__all__ = ["DEFAULT_BASE_URL", "DashBot", "make_bot", "make_request"]

DEFAULT_BASE_URL = "https://api.telegram.org/bot"


def make_request(
    *,
    pool_size: int = 32,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    write_timeout: float = 10.0,
    pool_timeout: float = 5.0,
    lean: bool = False,
) -> HTTPXRequest:
    """An HTTPX request object for ordinary Bot API calls.

    PTB's default pool timeout (1 s) is short for a delivery worker sending concurrently;
    waiting a little for a free connection is better than failing a send with TimedOut.
    All share one TLS context, since loading the CA bundle is most of what a Bot costs to make.
    `lean`: a LeanRequest, unless a proxy is configured.
    """
    options: dict[str, Any] = {
        "connection_pool_size": pool_size,
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "write_timeout": write_timeout,
        "pool_timeout": pool_timeout,
        "media_write_timeout": 30.0,
        "httpx_kwargs": {"verify": _tls_context()},
    }
    if lean and not proxy_configured():
        return LeanRequest(**options)
    return HTTPXRequest(**options)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (its CA bundle), built once per process."""
    return httpx.create_ssl_context()


#: Environment variables httpx reads for a proxy (any case): with one set, every request
#: keeps to httpx, which honours it.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def proxy_configured() -> bool:
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES)


class LeanRequest(HTTPXRequest):
    """HTTPXRequest whose form posts (every Bot API call but uploads) go through aiohttp.

    The delivery worker's sends spend several times the CPU in httpx/httpcore's pure-Python
    stack that they do in aiohttp's compiled one, and without it the delivery targets of
    docs/PERFORMANCE.md are missed on PostgreSQL. aiohttp's errors become PTB's TimedOut and
    NetworkError as HTTPXRequest's do, so the worker classifies them alike. Uploads
    (multipart) and everything behind a proxy keep to HTTPXRequest.
    """

    def __init__(self, **options: Any) -> None:
        """`options` as HTTPXRequest takes them (make_request's)."""
        super().__init__(**options)
        self._timeouts = {
            name: options[f"{name}_timeout"] for name in ("connect", "read", "write", "pool")
        }
        self._pool_size = options["connection_pool_size"]
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        """The session of the running loop (aiohttp's are bound to the loop that made them)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=_tls_context()),
                headers={"User-Agent": self.USER_AGENT},
                auto_decompress=False,
            )
            self._loop = loop
        return self._session

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if request_data is not None and request_data.multipart_data:
            return await super().do_request(
                url,
                method,
                request_data,
                read_timeout,
                write_timeout,
                connect_timeout,
                pool_timeout,
            )
        given = {
            "read": read_timeout,
            "write": write_timeout,
            "connect": connect_timeout,
            "pool": pool_timeout,
        }
        # A number (or None: no limit) when the call gave one, else PTB's "not given".
        timeout = {
            name: value if value is None or isinstance(value, int | float) else self._timeouts[name]
            for name, value in given.items()
        }
        body = request_data.url_encoded_parameters().encode() if request_data else b""
        limits = aiohttp.ClientTimeout(
            total=None,
            connect=_sum(timeout["pool"], timeout["connect"]),  # a free connection, then TCP
            sock_connect=timeout["connect"],
            sock_read=timeout["read"],
        )
        try:
            async with self._session_now().request(
                method,
                url,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=limits,
                allow_redirects=False,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's ServerTimeoutError is one too
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err

    async def shutdown(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None
        await super().shutdown()


def _sum(*seconds: float | None) -> float | None:
    """Timeouts added up; None (no limit) if any is None."""
    return None if any(s is None for s in seconds) else sum(s for s in seconds if s is not None)


class DashBot(telegram.Bot):
    """PTB's Bot plus `send_text`: sendMessage answered with the ids alone."""

    async def send_text(
        self,
        chat_id: str | int,
        text: str,
        reply_markup: telegram.InlineKeyboardMarkup | None = None,
    ) -> tuple[int, int]:
        """sendMessage; returns (chat id, message id) without building a ``telegram.Message``.

        The delivery worker keeps only the ids, so parsing every answer into a Message (its
        Chat, User, entities) would be wasted work. The call goes through the same
        request object and raises the same errors (RetryAfter, Forbidden, ChatMigrated …) as
        ``send_message``.
        """
        data: dict[str, object] = {"chat_id": chat_id, "text": text}
        if reply_markup is not None:
            data["reply_markup"] = reply_markup
        result = await self._post("sendMessage", data)
        return int(result["chat"]["id"]), int(result["message_id"])


def make_bot(
    token: str, base_url: str = DEFAULT_BASE_URL, *, pool_size: int = 32, lean: bool = False
) -> DashBot:
    """A ``telegram.Bot`` for ``token`` talking to ``base_url`` (PTB adds the token to it).

    ``getUpdates`` gets its own small pool so a long poll never starves sends; its read
    timeout leaves room for the poll's own ``timeout`` (PTB adds that to read_timeout).
    The caller must ``await bot.initialize()`` (or ``async with bot``) before use.
    """
    return DashBot(
        token=token,
        base_url=base_url or DEFAULT_BASE_URL,
        request=make_request(pool_size=pool_size, lean=lean),
        get_updates_request=make_request(pool_size=2, read_timeout=10.0),
    )
