"""Turn provider failures into the few decisions the delivery worker has to make.

The worker must not know python-telegram-bot's or twilio's exception trees; it only needs to
know whether to retry (and when), to stop messaging a person, to switch to a WhatsApp
template, to fix an address, to pause a whole channel, or to give up on one message.
Everything provider-specific about that judgement lives here, next to the codes it reads.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from dataclasses import dataclass
from enum import StrEnum

import telegram.error as tg_error
from telegram.warnings import PTBDeprecationWarning
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "DeliveryError",
    "ErrorKind",
    "classify_telegram_error",
    "classify_twilio_code",
    "classify_twilio_error",
]

#: Seconds to wait after a 429 that does not say how long (Twilio never does).
DEFAULT_RETRY_AFTER = 1.0


class ErrorKind(StrEnum):
    """What the delivery worker should do about a failed send."""

    OPT_OUT = "opt_out"
    """The person (or group) refused us: record an opt-out, never retry."""
    RETRY_AFTER = "retry_after"
    """Flood control: retry this message after ``retry_after`` seconds, slow the channel."""
    TRANSIENT = "transient"
    """Server error, timeout, network trouble: retry with backoff (bounded)."""
    WINDOW_CLOSED = "window_closed"
    """WhatsApp 24-hour session is closed: only a template (ContentSid) may go now."""
    CHAT_MIGRATED = "chat_migrated"
    """A Telegram group became a supergroup: update the address to ``new_address`` and retry."""
    CONFIGURATION = "configuration"
    """Our credentials or endpoint are wrong: pause the channel and alert; not the person's fault."""
    PERMANENT = "permanent"
    """This message can never be delivered as is (bad number, chat not found...): mark failed."""


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """A classified provider failure.

    ``code`` is the provider's own code as text (Twilio error code, or a short Telegram tag such
    as ``"403"``) so it can be stored and shown to a person next to ``detail``.
    """

    kind: ErrorKind
    detail: str
    code: str | None = None
    retry_after: float | None = None
    new_address: str | None = None

    @property
    def retryable(self) -> bool:
        """True when sending the same message again later may succeed."""
        return self.kind in (ErrorKind.RETRY_AFTER, ErrorKind.TRANSIENT, ErrorKind.CHAT_MIGRATED)


# --------------------------------------------------------------------------------------------
# Telegram

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


# --------------------------------------------------------------------------------------------
# Twilio

_TWILIO_OPT_OUT = {21610}  # Attempt to send to unsubscribed recipient (STOP)
_TWILIO_RATE = {20429, 63018, 21611}  # Too many requests; WhatsApp rate; From's queue is full
_TWILIO_WINDOW = {63016}  # Outside the WhatsApp 24-hour session: template required
_TWILIO_CONFIG = {20003, 20404, 21606, 21659, 21212, 63007}  # auth, account, bad From
_TWILIO_TRANSIENT = {20500, 20503, 30001, 30003, 30008, 30010, 63009}


def classify_twilio_code(
    code: int | str | None, status: int | None = None, detail: str = ""
) -> DeliveryError:
    """Classify a Twilio error code (REST answer or a status callback's ``ErrorCode``).

    Status callbacks carry only the code, so the mapping lives here for both paths.
    Unknown 4xx codes are PERMANENT (e.g. 21211 invalid To, 21614 not a mobile, 30005/30006
    unknown or landline handset, 30007 carrier filtering, 63024 invalid recipient).
    """
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    text = str(number) if number is not None else None
    detail = detail or (f"Twilio error {text}" if text else "Twilio error")
    if number in _TWILIO_OPT_OUT:
        return DeliveryError(ErrorKind.OPT_OUT, detail, text)
    if number in _TWILIO_RATE or status == 429:
        return DeliveryError(ErrorKind.RETRY_AFTER, detail, text, retry_after=DEFAULT_RETRY_AFTER)
    if number in _TWILIO_WINDOW:
        return DeliveryError(ErrorKind.WINDOW_CLOSED, detail, text)
    if number in _TWILIO_CONFIG or status in (401, 403, 404):
        return DeliveryError(ErrorKind.CONFIGURATION, detail, text)
    if number in _TWILIO_TRANSIENT or (status is not None and status >= 500):
        return DeliveryError(ErrorKind.TRANSIENT, detail, text)
    return DeliveryError(ErrorKind.PERMANENT, detail, text)


def classify_twilio_error(exc: BaseException) -> DeliveryError:
    """Classify an exception raised by a twilio ``Client`` call (sync or async).

    ``TwilioRestException`` carries ``.code`` from the JSON body, or the HTTP status when the
    body was not JSON; ``TwilioServiceException`` is the RFC 9457 form newer APIs answer with.
    Transport errors come through unwrapped from requests or aiohttp and are TRANSIENT.
    """
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or str(exc)
        return classify_twilio_code(exc.code, exc.status, str(detail))
    if isinstance(exc, TwilioException):
        return DeliveryError(ErrorKind.PERMANENT, str(exc), "twilio")
    if _is_transport_error(exc):
        return DeliveryError(ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}", "network")
    return DeliveryError(ErrorKind.PERMANENT, f"{type(exc).__name__}: {exc}", "unexpected")


def _is_transport_error(exc: BaseException) -> bool:
    """requests/aiohttp connection and timeout errors, without importing aiohttp eagerly."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError):
        return True
    return type(exc).__module__.startswith("aiohttp") and "Client" in type(exc).__name__
