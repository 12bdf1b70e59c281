"""Twilio: SMS and WhatsApp, two channel types sharing one account and one webhook.

inbound.py reads the webhook's form, webhook.py serves it and the status callbacks,
sender.py sends, client.py builds the REST client, errors.py classifies Twilio's codes.
SMS and WHATSAPP are what the rest of the system sees (bots.channel).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bots.channel import ChannelType, masked_tail

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bots.delivery import Sender
    from bots.intake import Intake
    from bots.ratelimit import Limit
    from dash.context import AppContext
    from dash.settings import Settings


class TwilioType(ChannelType):
    """One Twilio sender number: its rate is the number's, and Twilio answers STOP itself."""

    #: The setting that holds this channel's sender number.
    from_setting = ""
    #: The setting that holds this channel's sends a second.
    rate_setting = ""
    confirms_stop = True
    address_kind = "number"

    def account(self, settings: Settings) -> str:
        return f"{self.name}:{settings.twilio_account_sid}:{getattr(settings, self.from_setting)}"

    def make_sender(self, ctx: AppContext) -> Sender:
        from bots.twilio.sender import TwilioSender

        return TwilioSender(ctx, self.name)

    def limits(self, settings: Settings, address: str) -> list[Limit]:
        from bots.ratelimit import Limit

        return [Limit.per_second(self.name, getattr(settings, self.rate_setting))]

    def masked(self, address: str) -> str:
        return masked_tail(self.label, address)

    def preload(self) -> None:
        import bots.twilio.sender  # noqa: F401


class SmsType(TwilioType):
    name = "sms"
    label = "SMS"
    from_setting = "twilio_sms_from"
    rate_setting = "twilio_sms_per_second"
    # A long code's STOP and START are both answered by Twilio.
    confirms_start = True

    def routes(self, ctx: AppContext, intake: Intake) -> list[BaseRoute]:
        """One webhook serves both Twilio channels; it is mounted with SMS."""
        from bots.twilio.webhook import twilio_routes

        return list(twilio_routes(ctx, intake))


class WhatsAppType(TwilioType):
    name = "whatsapp"
    label = "WhatsApp"
    from_setting = "twilio_whatsapp_from"
    rate_setting = "twilio_whatsapp_per_second"
    # WhatsApp's 24-hour customer-service window; SMS reaches the same number.
    reply_window = timedelta(hours=24)
    fallback = "sms"


SMS = SmsType()
WHATSAPP = WhatsAppType()
