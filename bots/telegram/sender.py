"""Telegram messages and charts out, through python-telegram-bot's Bot.

Sends raise SendFailed with the failure classified by bots.telegram.errors.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.delivery import OutgoingItem, SendFailed
from bots.telegram.client import DashBot, make_bot
from bots.telegram.errors import classify_telegram_error
from bots.telegram.webhook import _LoopBot
from dash.context import AppContext

log = logging.getLogger("bots.telegram")

#: Telegram allows 1024 characters in a photo caption.
CAPTION_LIMIT = 1024


def _keyboard(buttons: Any) -> InlineKeyboardMarkup | None:
    """payload["buttons"] (rows of {"text", "data"}) as an inline keyboard."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(str(b["text"]), callback_data=str(b["data"])) for b in row]
            for row in buttons
        ]
    )


class TelegramSender:
    """Sends outbox items with sendMessage / sendPhoto through one Bot per event loop, whose
    posts go through aiohttp (client.LeanRequest)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self._bots = _LoopBot(
            lambda: make_bot(settings.telegram_token or "", settings.telegram_api_base, lean=True)
        )

    @property
    def bot(self) -> DashBot:
        return self._bots.get()

    async def send(self, item: OutgoingItem) -> str:
        """Send `item`; returns "<chat id>:<message id>" (message ids repeat across chats)."""
        markup = _keyboard(item.payload.get("buttons"))
        try:
            photo = await self._chart(item) if "photo" in item.payload else None
            bot = self.bot
            if photo is None:
                chat_id, message_id = await bot.send_text(item.address, item.text, markup)
                return f"{chat_id}:{message_id}"
            if len(item.text) <= CAPTION_LIMIT:
                sent = await bot.send_photo(
                    item.address, photo=photo, caption=item.text or None, reply_markup=markup
                )
            else:
                await bot.send_photo(item.address, photo=photo)
                sent = await bot.send_message(item.address, item.text, reply_markup=markup)
        except telegram.error.TelegramError as exc:
            raise SendFailed(classify_telegram_error(exc)) from exc
        return f"{sent.chat_id}:{sent.message_id}"

    async def _chart(self, item: OutgoingItem) -> bytes | None:
        """The chart PNG a payload asks for; None (plain text goes) when it cannot be drawn."""
        spec = item.payload.get("photo")
        if not isinstance(spec, dict) or spec.get("kind") != "chart":
            return None
        from bots.media import chart_png

        try:
            return await asyncio.to_thread(chart_png, self.ctx, int(spec["team_id"]), item.language)
        except Exception:
            log.exception("drawing the chart for outbox %s failed; sending text", item.outbox_id)
            return None

    async def aclose(self) -> None:
        await self._bots.aclose()
