"""E-mail: messages out over SMTP, with an unsubscribe link that works in one click.

sender.py builds and sends the message (plain text and HTML from templates/), errors.py
classifies SMTP's answers, webhook.py serves the unsubscribe link. EMAIL is what the rest
of the system sees (bots.channel). Replies by e-mail are not read: the person answers in
the dashboard or on a chat channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bots.channel import ChannelType

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bots.delivery import Sender
    from bots.intake import Intake
    from bots.ratelimit import Limit
    from dash.context import AppContext
    from dash.settings import Settings


class EmailType(ChannelType):
    """One SMTP server and sender address (DASH_SMTP_URL, DASH_MAIL_FROM)."""

    name = "email"
    label = "E-mail"

    def account(self, settings: Settings) -> str:
        host = urlsplit(settings.smtp_url or "").hostname or ""
        return f"email:{host}:{settings.mail_from}"

    def routes(self, ctx: AppContext, intake: Intake) -> list[BaseRoute]:
        from bots.email.webhook import email_routes

        return email_routes(ctx)

    def make_sender(self, ctx: AppContext) -> Sender:
        from bots.email.sender import EmailSender

        return EmailSender(ctx)

    def limits(self, settings: Settings, address: str) -> list[Limit]:
        from bots.ratelimit import Limit

        return [Limit.per_second(self.name, settings.smtp_per_second)]

    def normalise(self, address: str) -> str:
        """The domain is case-blind; the local part is kept as given (RFC 5321)."""
        local, at, domain = address.strip().rpartition("@")
        return f"{local}@{domain.lower()}" if at else address.strip()

    def masked(self, address: str) -> str:
        """The first letter and the domain: "E-mail a…@example.org"."""
        local, at, domain = address.rpartition("@")
        return f"{self.label} {local[:1]}…@{domain}" if at and local else self.label

    def preload(self) -> None:
        import bots.email.sender  # noqa: F401


EMAIL = EmailType()
