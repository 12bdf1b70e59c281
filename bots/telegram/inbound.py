"""Telegram updates in: Update JSON → InboundMessage.

Every update becomes one InboundMessage (provider id "u<update_id>", so Telegram's repeats
count once) and goes to dash.engine.handle_inbound, the same path the other channels use.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import telegram

from dash.context import AppContext
from dash.inbound import InboundMessage
from dash.models.base import fits_bigint
from dash.timeutil import utcnow

#: A Telegram user is known by their account, not a number (bots.channel.ChannelType).
_ADDRESS_KIND = "account"

log = logging.getLogger("bots.telegram")

_IN_CHAT = ("member", "administrator", "creator", "restricted")
_OUT_OF_CHAT = ("left", "kicked", "banned")


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
        address_kind=_ADDRESS_KIND,
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
        address_kind=_ADDRESS_KIND,
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
        address_kind=_ADDRESS_KIND,
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
        address_kind=_ADDRESS_KIND,
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
