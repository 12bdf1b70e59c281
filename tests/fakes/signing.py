"""Sign inbound webhooks exactly as the providers do, so tests post what Telegram/Twilio post.

Twilio signs the full public URL it called plus the sorted form fields with the auth token
(HMAC-SHA1, base64) in ``X-Twilio-Signature``; Telegram sends the ``secret_token`` given to
``setWebhook`` back verbatim in ``X-Telegram-Bot-Api-Secret-Token``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twilio.request_validator import RequestValidator

__all__ = [
    "TELEGRAM_SECRET_HEADER",
    "TWILIO_SIGNATURE_HEADER",
    "telegram_headers",
    "twilio_headers",
    "twilio_signature",
]

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a form POST of ``params`` to ``url``.

    ``url`` must be the public URL (``DASH_PUBLIC_URL + "/webhooks/twilio"``), query included.
    List values (repeated fields) are signed as Twilio does, each value in order.
    """
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def twilio_headers(auth_token: str, url: str, params: Mapping[str, Any]) -> dict[str, str]:
    """Headers for posting ``params`` form-encoded to ``url`` as Twilio would."""
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        TWILIO_SIGNATURE_HEADER: twilio_signature(auth_token, url, params),
        "User-Agent": "TwilioProxy/1.1",
    }


def telegram_headers(secret: str | None) -> dict[str, str]:
    """Headers of a Telegram webhook POST; no secret header when ``secret`` is None."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[TELEGRAM_SECRET_HEADER] = secret
    return headers
