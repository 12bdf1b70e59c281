"""Twilio's error codes and exceptions as the delivery worker's DeliveryError."""

from __future__ import annotations

import asyncio

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

from bots.errors import DEFAULT_RETRY_AFTER, DeliveryError, ErrorKind

__all__ = ["classify_twilio_code", "classify_twilio_error"]

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
