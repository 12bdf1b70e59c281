"""Inbound webhooks exactly as the providers post them, for the fault and abuse tests.

Builders return the payload a provider would send (a Telegram Update, Twilio's form fields);
`Poster` posts them signed to a served app (httpx) or an in-process one (TestClient), so the
same scenario runs through either.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any, Protocol

from bots.telegram.webhook import webhook_secret
from dash.context import AppContext
from dash.timeutil import utcnow
from tests.fakes.signing import telegram_headers, twilio_headers

TELEGRAM_PATH = "/webhooks/telegram"
TWILIO_PATH = "/webhooks/twilio"

_message_ids = itertools.count(1)


def telegram_update(
    update_id: int, user_id: int, text: str, *, first_name: str = "Ana", language: str = "en"
) -> dict[str, Any]:
    """A private-chat text message Update from user `user_id`."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": next(_message_ids),
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name,
                "language_code": language,
            },
            "chat": {"id": user_id, "type": "private", "first_name": first_name},
            "date": int(utcnow().timestamp()),
            "text": text,
        },
    }


def twilio_params(
    from_: str, text: str, *, to: str = "+15550000000", sid: str | None = None
) -> dict[str, str]:
    """An inbound SMS (or WhatsApp, with `from_` = "whatsapp:+…") as Twilio's form fields."""
    return {
        "MessageSid": sid or "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "0" * 32,
        "From": from_,
        "To": to,
        "Body": text,
        "NumMedia": "0",
    }


class _Client(Protocol):
    def post(self, url: str, **kwargs: Any) -> Any: ...


class Poster:
    """Posts signed webhooks to `base` ("" for a TestClient, else the served origin)."""

    def __init__(self, ctx: AppContext, client: _Client, base: str = "") -> None:
        self.ctx = ctx
        self.client = client
        self.base = base

    def telegram(self, update: dict[str, Any] | bytes, secret: str | None = None) -> Any:
        body = update if isinstance(update, bytes) else json.dumps(update).encode()
        headers = telegram_headers(webhook_secret(self.ctx) if secret is None else secret)
        return self.client.post(self.base + TELEGRAM_PATH, content=body, headers=headers)

    def twilio(self, params: dict[str, str], path: str = TWILIO_PATH) -> Any:
        settings = self.ctx.settings
        headers = twilio_headers(str(settings.twilio_auth_token), settings.url(path), params)
        return self.client.post(self.base + path, data=params, headers=headers)
