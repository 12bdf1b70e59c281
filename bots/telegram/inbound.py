"""Telegram: updates in (webhook or long polling), messages and charts out.

Every update becomes one InboundMessage (provider id "u<update_id>", so Telegram's repeats
count once) and goes to dash.engine.handle_inbound, the same path the other channels use.
Sends go through python-telegram-bot's Bot (bots.telegram_client.make_bot) and raise
SendFailed with the failure classified by bots.errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import telegram
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.delivery import MAX_CONCURRENT_SENDS, OutgoingItem, SendFailed
from bots.errors import classify_telegram_error
from bots.intake import Intake
from bots.telegram_client import DashBot, make_bot
from dash.context import AppContext
from dash.inbound import InboundMessage
from dash.models.base import fits_bigint
from dash.texts import LANGUAGES, render
from dash.timeutil import utcnow

log = logging.getLogger("bots.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_PATH = "/webhooks/telegram"
#: The bot's menu, in this order; descriptions come from the telegram_command template.
COMMANDS = ("join", "plan", "chart", "help", "stop")
#: Update kinds we act on; anything else Telegram could send is not asked for.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
#: Seconds a getUpdates long poll waits on Telegram's side.
POLL_TIMEOUT_SECONDS = 20
#: Telegram allows 1024 characters in a photo caption.
CAPTION_LIMIT = 1024

_IN_CHAT = ("member", "administrator", "creator", "restricted")
_OUT_OF_CHAT = ("left", "kicked", "banned")


# ---------------------------------------------------------------------------------------------
# Inbound: Update JSON → InboundMessage


def bot_id_from_token(token: str | None) -> int | None:
    """The bot's own user id is the number before the colon of its token."""
    head = (token or "").split(":", 1)[0]
    return int(head) if head.isdigit() else None


def command_text(text: str) -> str:
    """'/start JOIN-K7Q2' → 'JOIN K7Q2', '/plan@dash_bot' → 'PLAN', other text unchanged.

    Deep-link payloads cannot contain spaces, so a dash or underscore stands for one; a
    bare code after /start means "join with this code".
    """
    if not text.startswith("/"):
        return text
    head, _, rest = text[1:].partition(" ")
    command = head.split("@", 1)[0].upper()
    rest = rest.strip()
    if command == "START" and rest:
        words = rest.replace("_", " ").replace("-", " ", 1).split()
        if len(words) == 1:
            words.insert(0, "JOIN")
        return " ".join(words)
    return f"{command} {rest}".strip()


def _media_of(message: telegram.Message) -> list[dict[str, Any]]:
    media: list[dict[str, Any]] = []
    if message.photo:
        largest = message.photo[-1]
        media.append(
            {
                "type": "photo",
                "file_id": largest.file_id,
                "width": largest.width,
                "height": largest.height,
            }
        )
    for kind in ("voice", "audio", "video", "video_note", "document", "sticker", "animation"):
        attachment = getattr(message, kind, None)
        if attachment is not None:
            fields = attachment.to_dict()  # wire form: durations in seconds, as sent
            entry: dict[str, Any] = {"type": kind, "file_id": attachment.file_id}
            entry.update(
                {k: fields[k] for k in ("duration", "mime_type", "file_name") if k in fields}
            )
            media.append(entry)
    if message.location is not None:
        media.append(
            {
                "type": "location",
                "latitude": message.location.latitude,
                "longitude": message.location.longitude,
            }
        )
    return media


def _is_group(chat: telegram.Chat) -> bool:
    return chat.type in (telegram.Chat.GROUP, telegram.Chat.SUPERGROUP)


def _sent_at(value: datetime | None) -> datetime:
    if value is None:
        return utcnow()
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_TELEGRAM_ID = re.compile(r"-?\d{1,20}")


def _not_json(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), and PostgreSQL's JSONB refuses them."""
    raise ValueError(f"{name} is not valid JSON")


def parse_update(
    data: dict[str, Any], *, bot_id: int | None = None, bot: telegram.Bot | None = None
) -> InboundMessage | None:
    """The InboundMessage an Update carries, or None for updates that are not for us.

    Raises ValueError when `data` is not an Update at all (no update_id), or when its chat or
    user ids are not the integers Telegram always sends (a forged or corrupted update).
    """
    inbound = _parse_update(data, bot_id=bot_id, bot=bot)
    if inbound is not None and not (
        _TELEGRAM_ID.fullmatch(inbound.address) and _TELEGRAM_ID.fullmatch(inbound.sender)
    ):
        raise ValueError("chat and user ids must be integers")
    return inbound


def _is_update_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_update(
    data: dict[str, Any], *, bot_id: int | None, bot: telegram.Bot | None
) -> InboundMessage | None:
    if not isinstance(data, dict) or not _is_update_id(data.get("update_id")):
        raise ValueError("not a Telegram Update: update_id missing")
    update = telegram.Update.de_json(data, bot)
    provider_id = f"u{update.update_id}"

    if update.callback_query is not None:
        return _from_callback(update.callback_query, provider_id, data)
    if update.my_chat_member is not None:
        return _from_membership(update.my_chat_member, provider_id, data, bot_id)
    message = update.message or update.edited_message
    if message is None or message.from_user is None:
        return None  # channel posts, polls, reactions...: not conversation with a person
    if message.from_user.is_bot:
        return None
    chat, user = message.chat, message.from_user
    text = message.text if message.text is not None else (message.caption or "")
    return InboundMessage(
        channel="telegram",
        provider_id=provider_id,
        address=str(chat.id),
        sender=str(user.id),
        text=command_text(text.strip()),
        received_at=_sent_at(message.date),
        raw=data,
        sender_name=user.full_name,
        language=user.language_code,
        is_group=_is_group(chat),
        group_title=chat.title or "",
        media=_media_of(message),
    )


def _from_callback(
    query: telegram.CallbackQuery, provider_id: str, data: dict[str, Any]
) -> InboundMessage:
    """A pressed inline button: its data, and its label as text (so "4" reads as "4")."""
    label = query.data or ""
    message = query.message if isinstance(query.message, telegram.Message) else None
    if message is not None and message.reply_markup is not None:
        for row in message.reply_markup.inline_keyboard:
            for button in row:
                if button.callback_data == query.data:
                    label = button.text
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    chat = query.message.chat if query.message is not None else None
    return InboundMessage(
        channel="telegram",
        provider_id=provider_id,
        address=str(chat_id),
        sender=str(query.from_user.id),
        text=label,
        received_at=utcnow(),
        raw=data,
        sender_name=query.from_user.full_name,
        language=query.from_user.language_code,
        is_group=chat is not None and _is_group(chat),
        group_title=(chat.title or "") if chat is not None else "",
        callback_data=query.data,
        callback_id=query.id,
    )


def _from_membership(
    change: telegram.ChatMemberUpdated,
    provider_id: str,
    data: dict[str, Any],
    bot_id: int | None,
) -> InboundMessage | None:
    """The bot added to / removed from a group, or blocked in a private chat."""
    member = change.new_chat_member
    if bot_id is not None and member.user.id != bot_id:
        return None
    if bot_id is None and not member.user.is_bot:
        return None
    old, new = change.old_chat_member.status, member.status
    chat = change.chat
    if _is_group(chat):
        if new in _IN_CHAT and old in _OUT_OF_CHAT:
            event = "bot_added"
        elif new in _OUT_OF_CHAT and old in _IN_CHAT:
            event = "bot_removed"
        else:
            return None  # promoted, restricted...: nothing changes for us
    elif chat.type == telegram.Chat.PRIVATE and new in _OUT_OF_CHAT:
        event = "blocked"
    else:
        return None  # unblocking arrives as the person's /start
    return InboundMessage(
        channel="telegram",
        provider_id=provider_id,
        address=str(chat.id),
        sender=str(change.from_user.id),
        text="",
        received_at=_sent_at(change.date),
        raw=data,
        sender_name=change.from_user.full_name,
        language=change.from_user.language_code,
        is_group=_is_group(chat),
        group_title=chat.title or "",
        event=event,
    )


#: The last second a datetime can hold (9999-12-31 23:59:59 UTC) as Unix time.
_LAST_UNIX_TIME = 253_402_300_799


def _is_time(path: str) -> bool:
    """Whether the field at `path` holds Unix time (Telegram names them date, *_date)."""
    key = path.rsplit(".", 1)[-1]
    return key in ("date", "unix_time") or key.endswith("_date")


def unusable(data: dict[str, Any]) -> str | None:
    """Why an Update cannot be processed although it is well formed, or None.

    Telegram's ids stay far below 2^63 and its times are Unix times, so a number past what an
    integer column holds, or a time before 1970 or past year 9999, is a forged or corrupted
    update; trying it anyway raised in the database or the date parsing, answered 500 and
    Telegram sent it again for ever. Walks the whole update without recursion (any depth).
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}".lstrip("."), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{n}]", item) for n, item in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not fits_bigint(value):
            return f"{path} {value} is outside the 64-bit range of any Telegram id"
        elif (
            _is_time(path)
            and isinstance(value, int | float)
            and not 0 <= value <= _LAST_UNIX_TIME  # nan is not within either
        ):
            return f"{path} {value!r} is not a time (Unix seconds from 1970 to 9999)"
    return None


def rejected_update(data: dict[str, Any], reason: str) -> InboundMessage:
    """An unusable Update as a message to store, marked with `reason`, never processed."""
    return InboundMessage(
        channel="telegram",
        provider_id=f"u{data['update_id']}",
        address="",
        sender="",
        text="",
        received_at=utcnow(),
        raw=data,
        rejected=reason,
    )


def read_update(ctx: AppContext, data: dict[str, Any]) -> InboundMessage | None:
    """The message an Update carries (None for one we ignore), or one marked rejected when
    the update is well formed but `unusable`.

    Raises ValueError for a payload that is not an Update.
    """
    if isinstance(data, dict) and _is_update_id(data.get("update_id")):
        reason = unusable(data)
        if reason is not None:
            log.warning("telegram update %s rejected: %s", data["update_id"], reason[:200])
            return rejected_update(data, reason)
    try:
        inbound = parse_update(data, bot_id=bot_id_from_token(ctx.settings.telegram_token))
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        # A field of the wrong type ("message": "hi", "text": 5) breaks PTB's de_json in
        # many ways; all of them mean "not an Update we can read", never a server error.
        raise ValueError(f"malformed Update: {exc}") from exc
    if inbound is None:
        return None
    if not isinstance(inbound.text, str) or not isinstance(inbound.callback_data, str | None):
        raise ValueError("malformed Update: text and callback data must be strings")
    if not (inbound.address.lstrip("-").isdigit() and inbound.sender.lstrip("-").isdigit()):
        raise ValueError("malformed Update: chat and user ids must be integers")
    return inbound


def handle_update(ctx: AppContext, data: dict[str, Any]) -> tuple[InboundMessage | None, bool]:
    """Store and process one Update (blocking). Returns (the message, whether a duplicate).

    Raises ValueError for a payload that is not an Update; database errors propagate so
    the caller can make Telegram retry.
    """
    from dash.engine import handle_inbound

    inbound = read_update(ctx, data)
    if inbound is None:
        return None, False
    return inbound, handle_inbound(ctx, inbound).duplicate


# ---------------------------------------------------------------------------------------------
# Webhook


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
        if not hmac.compare_digest(given.encode(), ctx.telegram_webhook_secret.encode()):
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


# ---------------------------------------------------------------------------------------------
# Outbound


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


class _SendLanes:
    """Bots that each carry one send at a time over a connection of their own.

    httpcore's pool walks every connection it holds (polling each idle socket, and counting
    the idle ones once per idle one) whenever a request starts or ends: with 8 sends in
    flight through one pool that bookkeeping was ~40% of a send's CPU. A send takes a free
    lane and gives it back, so no pool ever holds more than one connection. Lanes are made
    as sends need them, at most `size`, per event loop (a pool cannot change loops). The
    lanes now post through aiohttp (LeanRequest); whether one aiohttp pool would serve as
    well has not been measured.
    """

    def __init__(self, factory: Callable[[], DashBot], size: int) -> None:
        self.factory = factory
        self.size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: asyncio.Queue[DashBot] = asyncio.Queue()
        self._made: list[DashBot] = []

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[DashBot]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._free, self._made = loop, asyncio.Queue(), []
        if self._free.empty() and len(self._made) < self.size:
            bot = self.factory()
            self._made.append(bot)
        else:
            bot = await self._free.get()
        try:
            yield bot
        finally:
            self._free.put_nowait(bot)

    async def aclose(self) -> None:
        made, self._made, self._loop = self._made, [], None
        for bot in made:
            with contextlib.suppress(Exception):
                await bot.shutdown()
            # Lanes post without Bot.initialize (it would call getMe), so Bot.shutdown skips
            # their request: close it directly, or its aiohttp session is left open.
            with contextlib.suppress(Exception):
                await bot.request.shutdown()


class TelegramSender:
    """Sends outbox items with sendMessage / sendPhoto, each through a free send lane."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self._bots = _LoopBot(
            lambda: make_bot(settings.telegram_token or "", settings.telegram_api_base)
        )
        self._lanes = _SendLanes(
            lambda: make_bot(
                settings.telegram_token or "", settings.telegram_api_base, pool_size=1, lean=True
            ),
            MAX_CONCURRENT_SENDS,
        )

    @property
    def bot(self) -> DashBot:
        """The bot for everything but sends (menu, webhook, polling, button answers)."""
        return self._bots.get()

    async def send(self, item: OutgoingItem) -> str:
        """Send `item`; returns "<chat id>:<message id>" (message ids repeat across chats)."""
        markup = _keyboard(item.payload.get("buttons"))
        try:
            photo = await self._chart(item) if "photo" in item.payload else None
            async with self._lanes.lane() as bot:
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
        await self._lanes.aclose()
        bot = self._bots._bot
        if bot is not None:
            with contextlib.suppress(Exception):
                await bot.shutdown()


# ---------------------------------------------------------------------------------------------
# The channel's life cycle in `dash serve`


class TelegramChannel(TelegramSender):
    """Menu, webhook or long polling: what `dash serve` starts and stops for Telegram."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self._poller: asyncio.Task[None] | None = None
        self.offset: int | None = None

    async def start(self, stop: asyncio.Event) -> None:
        """Publish the command menu, then webhook (https public URL) or polling."""
        settings = self.ctx.settings
        try:
            await self.set_commands()
            if settings.public_https:
                await self.bot.set_webhook(
                    url=settings.url(WEBHOOK_PATH),
                    secret_token=self.ctx.telegram_webhook_secret,
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
        await self.aclose()
