"""Build the python-telegram-bot client from settings values.

One place decides the HTTP pool and timeouts, and honours ``DASH_TELEGRAM_API_BASE`` (the
``base_url`` PTB appends the token to), so tests point the real client at the fake Bot API.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx
import telegram
from telegram.request import HTTPXRequest

__all__ = ["DEFAULT_BASE_URL", "DashBot", "make_bot", "make_request"]

DEFAULT_BASE_URL = "https://api.telegram.org/bot"


def make_request(
    *,
    pool_size: int = 32,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    write_timeout: float = 10.0,
    pool_timeout: float = 5.0,
) -> HTTPXRequest:
    """An HTTPX request object for ordinary Bot API calls.

    PTB's default pool timeout (1 s) is short for a delivery worker sending concurrently;
    waiting a little for a free connection is better than failing a send with TimedOut.
    All share one TLS context, since loading the CA bundle is most of what a Bot costs to make.
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
    return HTTPXRequest(**options)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (its CA bundle), built once per process."""
    return httpx.create_ssl_context()


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


def make_bot(token: str, base_url: str = DEFAULT_BASE_URL, *, pool_size: int = 32) -> DashBot:
    """A ``telegram.Bot`` for ``token`` talking to ``base_url`` (PTB adds the token to it).

    ``getUpdates`` gets its own small pool so a long poll never starves sends; its read
    timeout leaves room for the poll's own ``timeout`` (PTB adds that to read_timeout).
    The caller must ``await bot.initialize()`` (or ``async with bot``) before use.
    """
    return DashBot(
        token=token,
        base_url=base_url or DEFAULT_BASE_URL,
        request=make_request(pool_size=pool_size),
        get_updates_request=make_request(pool_size=2, read_timeout=10.0),
    )
