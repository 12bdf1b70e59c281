"""Which channels this deployment can send on, decided from settings alone."""

from __future__ import annotations

import logging

from bots.delivery import Sender
from dash.context import AppContext

log = logging.getLogger("bots.registry")


def build_senders(ctx: AppContext) -> dict[str, Sender]:
    """channel → Sender: console always; Telegram with a token; SMS/WhatsApp with Twilio
    credentials and that channel's sender number. Unconfigured channels keep their outbox
    rows queued (visible) rather than failing them."""
    from bots.console import ConsoleSender

    settings = ctx.settings
    senders: dict[str, Sender] = {"console": ConsoleSender(ctx)}
    if settings.telegram_enabled:
        from bots.telegram import TelegramSender

        senders["telegram"] = TelegramSender(ctx)
    if settings.twilio_enabled:
        from bots.twilio import TwilioSender

        if settings.twilio_sms_from:
            senders["sms"] = TwilioSender(ctx, "sms")
        if settings.twilio_whatsapp_from:
            senders["whatsapp"] = TwilioSender(ctx, "whatsapp")
        if not (settings.twilio_sms_from or settings.twilio_whatsapp_from):
            log.warning("Twilio credentials set but no DASH_TWILIO_SMS_FROM/WHATSAPP_FROM")
    return senders
