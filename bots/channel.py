"""What a channel is to the rest of the system: one ChannelType per channel, in its own package.

The server, the delivery worker, the rate limiter and the leader election ask a channel's
type what they need (its webhook routes, its sender, its rate limits, how its provider's
flood control works, whether an address is a group chat); none of them names a channel.
bots.registry lists the types; adding a channel is a package plus one line there.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bots.delivery import Sender
    from bots.intake import Intake
    from bots.ratelimit import Limit
    from dash.context import AppContext
    from dash.settings import Settings


class BackgroundTask(Protocol):
    """Something a channel runs beside the web app (Telegram's long polling, say)."""

    #: Held by one process at a time across the deployment (None: every process runs it).
    lock_key: str | None

    async def start(self, stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


class ChannelType:
    """A channel's answers to the questions the generic parts ask; override what differs.

    Subclasses set `name` (the value stored in messages' and outbox rows' `channel`) and
    `label` (how the dashboard names the channel), and implement `enabled` and `make_sender`.
    """

    name: str = ""
    label: str = ""
    #: A provider's "too many requests" concerns one chat (Telegram) rather than the whole
    #: sender (Twilio's number): then only that message waits, the others keep going.
    flood_control_per_chat: bool = False
    #: The provider answers STOP/START itself (Twilio on long codes), so we stay silent.
    confirms_stop: bool = False
    confirms_start: bool = False
    #: What a person's address on the channel is to them: "number" on phone channels, else
    #: "account" (the bot knows them by their account, so a stranger is told "I don't know you").
    address_kind: str = "account"
    #: Free-form messages may go only this long after the person last wrote (None: always);
    #: outside it a message needs an approved template, or goes on `fallback`.
    reply_window: timedelta | None = None
    #: A channel that reaches the same address when the reply window is closed.
    fallback: str | None = None

    def enabled(self, settings: Settings) -> bool:
        """Whether this deployment is configured to send on the channel."""
        return self.name in settings.enabled_channels

    def account(self, settings: Settings) -> str:
        """The provider account a send counts against: the rate-limit and leadership key."""
        return self.name

    def routes(self, ctx: AppContext, intake: Intake) -> list[BaseRoute]:
        """The webhook routes the channel serves (mounted whether or not it is enabled, so a
        provider calling an unconfigured deployment gets the channel's own answer)."""
        return []

    def make_sender(self, ctx: AppContext) -> Sender:
        raise NotImplementedError

    def limits(self, settings: Settings, address: str) -> list[Limit]:
        """The limits one send to `address` counts against; the account's own limit first."""
        return []

    def normalise(self, address: str) -> str:
        """An address as the channel stores it."""
        return address.strip()

    def masked(self, address: str) -> str:
        """How the dashboard shows an address: enough to recognise, not to copy."""
        return self.label or self.name

    def is_group(self, address: str) -> bool:
        """Whether `address` is a group chat (a team's place) rather than one person."""
        return False

    def background(self, ctx: AppContext) -> BackgroundTask | None:
        """What the channel runs beside the web app, if anything."""
        return None

    def preload(self) -> None:
        """Import what sending needs now, so a worker's heap is settled with it loaded."""

    def __repr__(self) -> str:
        return f"<ChannelType {self.name}>"


def masked_tail(label: str, address: str, digits: int = 4) -> str:
    """The label and the address's last digits: "WhatsApp …1234"."""
    return f"{label} …{address[-digits:]}" if address else label


__all__ = ["BackgroundTask", "ChannelType", "masked_tail"]
