"""POST /webhooks/telegram: the secret header checked, the update stored and processed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from functools import partial

import telegram
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bots.intake import Intake
from bots.telegram.client import DashBot, make_bot
from bots.telegram.inbound import _not_json, read_update
from dash.context import AppContext

log = logging.getLogger("bots.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_PATH = "/webhooks/telegram"


def webhook_secret(ctx: AppContext) -> str:
    """The `secret_token` Telegram sends back: configured, or derived so restarts agree."""
    if ctx.settings.telegram_webhook_secret:
        return ctx.settings.telegram_webhook_secret
    return derived_secret(ctx.secret)


def derived_secret(secret_key: str) -> str:
    """The webhook secret derived from a deployment's secret key."""
    digest = hmac.new(secret_key.encode(), b"telegram-webhook", hashlib.sha256)
    return digest.hexdigest()[:48]


class _LoopBot:
    """One Bot per event loop: an HTTP client pool cannot be shared between loops."""

    def __init__(self, factory: Callable[[], DashBot]) -> None:
        self.factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bot: DashBot | None = None

    def get(self) -> DashBot:
        loop = asyncio.get_running_loop()
        if self._bot is None or self._loop is not loop:
            self._bot, self._loop = self.factory(), loop
        return self._bot

    async def aclose(self) -> None:
        """Close the bot's connections (only possible on the loop that opened them)."""
        bot, self._bot = self._bot, None
        if bot is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await bot.shutdown()
            with contextlib.suppress(Exception):
                await bot.request.shutdown()  # Bot.shutdown skips it when never initialised


async def answer_callback(bot: telegram.Bot, callback_id: str) -> None:
    """Stop the button's spinner; best effort (the reply itself comes through the outbox)."""
    try:
        await bot.answer_callback_query(callback_id)
    except telegram.error.TelegramError as exc:
        log.info("answerCallbackQuery %s failed: %s", callback_id, exc)


def telegram_routes(ctx: AppContext, intake: Intake | None = None) -> list[Route]:
    """POST /webhooks/telegram: verify the secret header, store, process, answer 200.

    Updates arriving together are stored and processed together (`intake`, shared with the
    other webhooks of the process).
    """
    settings = ctx.settings
    intake = intake or Intake(ctx)
    bots = _LoopBot(lambda: make_bot(settings.telegram_token or "", settings.telegram_api_base))

    async def webhook(request: Request) -> Response:
        if not settings.telegram_enabled:
            return JSONResponse({"error": "telegram is not configured"}, status_code=404)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), webhook_secret(ctx).encode()):
            return JSONResponse({"error": "bad secret token"}, status_code=403)
        try:
            data = json.loads(await request.body(), parse_constant=_not_json)
            inbound, result = await intake.submit(partial(read_update, ctx, data))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # deep nesting too
            return JSONResponse({"error": f"not a Telegram update: {exc}"}, status_code=400)
        except SQLAlchemyError:
            log.exception("database unavailable; Telegram will retry the update")
            return JSONResponse({"error": "try again later"}, status_code=503)
        duplicate = result is not None and result.duplicate
        if inbound is not None and inbound.callback_id and not duplicate:
            await answer_callback(bots.get(), inbound.callback_id)
        return JSONResponse({"ok": True, "duplicate": duplicate})

    return [Route(WEBHOOK_PATH, webhook, methods=["POST"])]
