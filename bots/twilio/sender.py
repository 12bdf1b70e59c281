"""Twilio SMS and WhatsApp out, through Messages.create."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from twilio.rest import Client

from bots.delivery import OutgoingItem, SendFailed
from bots.errors import DeliveryError, ErrorKind
from bots.media import attached_chart_url
from bots.twilio.client import make_twilio_client
from bots.twilio.errors import classify_twilio_error
from bots.twilio.webhook import STATUS_PATH
from dash.context import AppContext
from dash.timeutil import utcnow

log = logging.getLogger("bots.twilio")

#: WhatsApp allows free-form messages this long after the person last wrote.
WHATSAPP_WINDOW = timedelta(hours=24)
#: The code Twilio gives a free-form WhatsApp message outside the 24-hour window.
WINDOW_CLOSED_CODE = "63016"


def window_open(last_inbound: datetime | None, now: datetime) -> bool:
    """Whether WhatsApp still allows free-form messages to someone who last wrote then."""
    return last_inbound is not None and now - last_inbound < WHATSAPP_WINDOW


class TwilioSender:
    """Sends SMS (kind "sms") or WhatsApp (kind "whatsapp") outbox items with Messages.create.

    WhatsApp outside the 24-hour window goes as the payload's approved template
    (ContentSid + ContentVariables); with no template it is not sent at all (63016).
    """

    def __init__(self, ctx: AppContext, kind: str) -> None:
        if kind not in ("sms", "whatsapp"):
            raise ValueError(f"unknown Twilio channel {kind!r}")
        self.ctx = ctx
        self.kind = kind
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            s = self.ctx.settings
            self._client = make_twilio_client(
                s.twilio_account_sid or "", s.twilio_auth_token or "", s.twilio_api_base
            )
        return self._client

    def sender_address(self) -> str:
        s = self.ctx.settings
        if self.kind == "sms":
            return s.twilio_sms_from or ""
        number = s.twilio_whatsapp_from or ""
        return number if number.startswith("whatsapp:") else f"whatsapp:{number}"

    def create_arguments(self, item: OutgoingItem, now: datetime) -> dict[str, Any]:
        """Messages.create arguments for `item`; raises SendFailed when it may not go."""
        s = self.ctx.settings
        to = item.address if self.kind == "sms" else f"whatsapp:{item.address}"
        args: dict[str, Any] = {
            "to": to,
            "from_": self.sender_address(),
            "status_callback": s.url(STATUS_PATH),
        }
        template = item.payload.get("template")
        if self.kind == "whatsapp" and not window_open(item.last_inbound_at, now):
            if not isinstance(template, dict) or not template.get("content_sid"):
                raise SendFailed(
                    DeliveryError(
                        ErrorKind.WINDOW_CLOSED,
                        "outside WhatsApp's 24-hour window and this message has no approved"
                        " template; it can go once the person writes in",
                        WINDOW_CLOSED_CODE,
                    )
                )
            args["content_sid"] = template["content_sid"]
            args["content_variables"] = json.dumps(
                {str(k): str(v) for k, v in (template.get("variables") or {}).items()}
            )
            return args
        args["body"] = item.text
        media = attached_chart_url(self.ctx, item.payload, item.outbox_id)
        if media:
            args["media_url"] = [media]
        return args

    async def send(self, item: OutgoingItem) -> str:
        args = self.create_arguments(item, utcnow())
        try:
            message = await asyncio.to_thread(self.client.messages.create, **args)
        except Exception as exc:
            raise SendFailed(classify_twilio_error(exc)) from exc
        return str(message.sid)
