"""Telegram's life cycle in `dash serve`: the command menu, then webhook or long polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import telegram

from bots.telegram.client import DashBot, make_bot
from bots.telegram.inbound import handle_update
from bots.telegram.webhook import WEBHOOK_PATH, _LoopBot, answer_callback, webhook_secret
from dash.context import AppContext
from dash.texts import LANGUAGES, render

log = logging.getLogger("bots.telegram")

#: The bot's menu, in this order; descriptions come from the telegram_command template.
COMMANDS = ("join", "plan", "chart", "help", "stop")
#: Update kinds we act on; anything else Telegram could send is not asked for.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
#: Seconds a getUpdates long poll waits on Telegram's side.
POLL_TIMEOUT_SECONDS = 20


class TelegramService:
    """Menu, webhook or long polling: what `dash serve` starts and stops for Telegram."""

    def __init__(self, ctx: AppContext, lock_key: str | None = None) -> None:
        self.ctx = ctx
        #: Only one process may long-poll a bot (None: webhook mode, every process may start).
        self.lock_key = lock_key
        settings = ctx.settings
        self._bots = _LoopBot(
            lambda: make_bot(settings.telegram_token or "", settings.telegram_api_base)
        )
        self._poller: asyncio.Task[None] | None = None
        self.offset: int | None = None

    @property
    def bot(self) -> DashBot:
        return self._bots.get()

    async def start(self, stop: asyncio.Event) -> None:
        """Publish the command menu, then webhook (https public URL) or polling."""
        settings = self.ctx.settings
        try:
            await self.set_commands()
            if settings.public_https:
                await self.bot.set_webhook(
                    url=settings.url(WEBHOOK_PATH),
                    secret_token=webhook_secret(self.ctx),
                    allowed_updates=ALLOWED_UPDATES,
                )
                log.info("telegram: webhook set to %s", settings.url(WEBHOOK_PATH))
                return
            await self.bot.delete_webhook()
        except telegram.error.TelegramError as exc:
            log.error("telegram start-up call failed: %s", exc)
            if settings.public_https:
                return
        self._poller = asyncio.create_task(self.poll(stop), name="telegram-polling")
        log.info("telegram: long polling (public URL is not https)")

    async def set_commands(self) -> None:
        """The bot's command menu in every language we speak."""
        for lang in LANGUAGES:
            commands = [
                telegram.BotCommand(name, render("telegram_command", lang, command=name))
                for name in COMMANDS
            ]
            await self.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)

    async def poll(self, stop: asyncio.Event) -> None:
        """getUpdates in a loop; an update is confirmed (offset) only once it is stored."""
        failures = 0
        while not stop.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=self.offset,
                    timeout=POLL_TIMEOUT_SECONDS,
                    allowed_updates=ALLOWED_UPDATES,
                )
                for update in updates:
                    await self.process(json.loads(update.to_json()))
                    self.offset = update.update_id + 1
                failures = 0
            except asyncio.CancelledError:
                raise
            except telegram.error.Conflict:
                log.warning("telegram: a webhook is set; deleting it to poll")
                with contextlib.suppress(telegram.error.TelegramError):
                    await self.bot.delete_webhook()
                failures += 1
            except Exception:
                failures += 1
                log.exception("telegram polling failed (%s in a row)", failures)
            if failures:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(30.0, 0.5 * 2**failures))

    async def process(self, data: dict[str, Any]) -> None:
        """One polled update through the same path as the webhook."""
        try:
            inbound, duplicate = await asyncio.to_thread(handle_update, self.ctx, data)
        except ValueError as exc:
            log.warning("telegram: skipping a malformed update: %s", exc)
            return
        if inbound is not None and inbound.callback_id and not duplicate:
            await answer_callback(self.bot, inbound.callback_id)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
        await self._bots.aclose()
