"""The console channel: talk to the bot in a terminal (`dash chat`), no account needed.

chat.py holds the sender and the chat loop; CONSOLE is what the rest of the system sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bots.channel import ChannelType

if TYPE_CHECKING:
    from bots.delivery import Sender
    from dash.context import AppContext


class ConsoleType(ChannelType):
    """Always enabled: its mailbox is the database, so there is nothing to configure."""

    name = "console"
    label = "console"
    address_kind = "number"  # a simulation of phone numbers

    def make_sender(self, ctx: AppContext) -> Sender:
        from bots.console.chat import ConsoleSender

        return ConsoleSender(ctx)

    def masked(self, address: str) -> str:
        return self.label


CONSOLE = ConsoleType()
