"""python-telegram-bot's exceptions as the delivery worker's DeliveryError."""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings

import telegram.error as tg_error
from telegram.warnings import PTBDeprecationWarning

from bots.errors import DeliveryError, ErrorKind

__all__ = ["classify_telegram_error"]

# Forbidden texts that mean "this chat refused us" (Bot API descriptions, lower-cased).
_TELEGRAM_REFUSALS = (
    "bot was blocked by the user",
    "user is deactivated",
    "bot was kicked",
    "bot is not a member",
)
# Forbidden texts that are permanent but are not the person's choice.
_TELEGRAM_CANNOT_START = (
    "bot can't initiate conversation",
    "bot can't send messages to bots",
)


def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def classify_telegram_error(exc: BaseException) -> DeliveryError:
    """Classify an exception raised by a python-telegram-bot ``Bot`` call.

    Order matters: in PTB ``BadRequest`` and ``TimedOut`` are subclasses of ``NetworkError``.
    Any ``Forbidden`` is final for that chat; the ones listed in ``_TELEGRAM_CANNOT_START`` are
    PERMANENT (the person never opened the chat, so they did not opt out), the rest OPT_OUT.
    """
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, tg_error.RetryAfter):
        with warnings.catch_warnings():
            # PTB 22 warns when the int form is read; both forms are handled.
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            retry_after = _seconds(exc.retry_after)
        return DeliveryError(ErrorKind.RETRY_AFTER, detail, "429", retry_after=retry_after)
    if isinstance(exc, tg_error.ChatMigrated):
        return DeliveryError(
            ErrorKind.CHAT_MIGRATED, detail, "migrated", new_address=str(exc.new_chat_id)
        )
    if isinstance(exc, tg_error.Forbidden):
        lowered = detail.lower()
        if any(text in lowered for text in _TELEGRAM_CANNOT_START):
            return DeliveryError(ErrorKind.PERMANENT, detail, "403")
        return DeliveryError(ErrorKind.OPT_OUT, detail, "403")
    if isinstance(exc, tg_error.InvalidToken | tg_error.EndPointNotFound):
        return DeliveryError(ErrorKind.CONFIGURATION, detail, "401")
    if isinstance(exc, tg_error.BadRequest):
        code = "chat_not_found" if "chat not found" in detail.lower() else "400"
        return DeliveryError(ErrorKind.PERMANENT, detail, code)
    if isinstance(exc, tg_error.Conflict):
        # Another getUpdates poller or an active webhook: a deployment problem, not the message's.
        return DeliveryError(ErrorKind.CONFIGURATION, detail, "409")
    if isinstance(exc, tg_error.NetworkError | TimeoutError | asyncio.TimeoutError | OSError):
        # NetworkError covers TimedOut, 5xx answers and httpx transport errors (PTB wraps them).
        return DeliveryError(ErrorKind.TRANSIENT, detail, "network")
    if isinstance(exc, tg_error.TelegramError):
        return DeliveryError(ErrorKind.TRANSIENT, detail, "telegram")
    return DeliveryError(ErrorKind.PERMANENT, f"{type(exc).__name__}: {detail}", "unexpected")
