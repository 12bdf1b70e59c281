"""Twilio's inbound-message webhook form (SMS and WhatsApp) as an InboundMessage."""

from __future__ import annotations

from typing import Any

from dash.inbound import InboundMessage
from dash.phones import BadPhoneNumber, from_provider
from dash.timeutil import utcnow

#: Twilio attaches at most 10 media to one message; NumMedia above that is not Twilio's.
MAX_MEDIA = 10


def channel_of(address: str) -> str:
    return "whatsapp" if address.lower().startswith("whatsapp:") else "sms"


def parse_inbound(params: dict[str, str]) -> InboundMessage:
    """A Twilio inbound-message webhook's form fields as an InboundMessage.

    Raises ValueError when MessageSid or a usable From is missing.
    """
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or ""
    if not sid:
        raise ValueError("MessageSid missing")
    raw_from = params.get("From", "")
    try:
        address = from_provider(raw_from)
    except BadPhoneNumber as exc:
        raise ValueError(f"unusable From {raw_from!r}") from exc
    media: list[dict[str, Any]] = []
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError:
        count = 0
    for n in range(min(count, MAX_MEDIA)):  # a forged huge NumMedia must not spin forever
        url = params.get(f"MediaUrl{n}")
        if url:
            media.append({"type": params.get(f"MediaContentType{n}", ""), "url": url})
    from bots.registry import type_for

    channel_type = type_for(channel_of(raw_from))
    return InboundMessage(
        channel=channel_type.name,
        provider_id=sid,
        address=address,
        sender=address,
        text=(params.get("Body") or "").strip(),
        received_at=utcnow(),
        raw=dict(params),
        sender_name=params.get("ProfileName", ""),
        media=media,
        provider_confirms_stop=channel_type.confirms_stop,
        provider_confirms_start=channel_type.confirms_start,
    )
