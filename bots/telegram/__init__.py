"""Telegram: a bot's updates in (webhook or long polling), messages and charts out.

inbound.py reads updates, webhook.py serves them, polling.py runs the bot's life cycle in
`dash serve`, sender.py sends, client.py builds python-telegram-bot's Bot, errors.py
classifies its failures. TELEGRAM is what the rest of the system sees (bots.channel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bots.channel import ChannelType

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bots.channel import BackgroundTask
    from bots.delivery import Sender
    from bots.intake import Intake
    from bots.ratelimit import Limit
    from dash.context import AppContext
    from dash.settings import Settings


class TelegramType(ChannelType):
    """One bot: 30 messages a second overall, one a second per chat, 20 a minute per group."""

    name = "telegram"
    label = "Telegram"
    # Telegram's 429 names the chat that was too fast; the bot's other chats may go on.
    flood_control_per_chat = True

    def account(self, settings: Settings) -> str:
        bot = (settings.telegram_token or "").split(":", 1)[0]
        return f"telegram:{bot}"

    def routes(self, ctx: AppContext, intake: Intake) -> list[BaseRoute]:
        from bots.telegram.webhook import telegram_routes

        return list(telegram_routes(ctx, intake))

    def make_sender(self, ctx: AppContext) -> Sender:
        from bots.telegram.sender import TelegramSender

        return TelegramSender(ctx)

    def limits(self, settings: Settings, address: str) -> list[Limit]:
        from bots.ratelimit import Limit

        limits = [
            Limit.per_second("telegram", settings.telegram_per_second),
            Limit.per_second(f"telegram:chat:{address}", settings.telegram_per_chat_per_second),
        ]
        if self.is_group(address):
            limits.append(
                Limit.per_minute(f"telegram:group:{address}", settings.telegram_group_per_minute)
            )
        return limits

    def masked(self, address: str) -> str:
        """A @username is shown as is; a chat id (a number) is not shown."""
        return f"Telegram {address}" if address.startswith("@") else "Telegram"

    def is_group(self, address: str) -> bool:
        # Group and supergroup chat ids are negative; a person's chat id is their user id.
        return address.startswith("-") and address[1:].isdigit()

    def background(self, ctx: AppContext) -> BackgroundTask | None:
        from bots.telegram.polling import TelegramService

        settings = ctx.settings
        # Webhook mode: every process may set it. Long polling: one process per bot.
        key = None if settings.public_https else "telegram-poll:" + self.account(settings)
        return TelegramService(ctx, lock_key=key)

    def preload(self) -> None:
        import bots.telegram.sender  # noqa: F401


TELEGRAM = TelegramType()
