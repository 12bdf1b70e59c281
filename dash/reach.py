"""Where a message to a person goes: one of their addresses, on a channel the deployment sends on.

No channel is named here: the choice reads only the person's address rows and the set of
enabled channels, so a new channel needs no change in this module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dash.models import Address, Channel, Person

#: The channel of e-mail addresses: a dashboard account's log-in e-mail, or a leader's given in
#: chat, is stored as an address on it, so whichever channel type sends e-mail reaches them.
EMAIL = "email"


@dataclass(frozen=True)
class ReplyWindow:
    """A channel that takes free-form messages only for `length` after the person last wrote
    (a provider's rule). Outside it only an approved template goes; else the message may go on
    `fallback`, a channel that reaches the same address, when the deployment sends on it."""

    length: timedelta
    fallback: str | None = None


def reply_windows(ctx: Any) -> Mapping[str, ReplyWindow]:
    """channel → its reply window, for the channels that have one (AppContext.reply_windows)."""
    return getattr(ctx, "reply_windows", None) or {}


def closed_window(
    row: Address, windows: Mapping[str, ReplyWindow], now: datetime
) -> ReplyWindow | None:
    """The window of `row`'s channel when it is closed for a free-form message now, else None."""
    window = windows.get(row.channel)
    if window is None:
        return None
    wrote = row.last_inbound_at
    if wrote is not None and now.replace(tzinfo=None) - wrote.replace(tzinfo=None) < window.length:
        return None
    return window


def enabled_channels(ctx: Any) -> Collection[str]:
    """The channels this deployment sends on: the app's list (`AppContext.channels`) when it
    has one, else the chat channels of the `Channel` enum (what every deployment reached)."""
    channels = getattr(ctx, "channels", None)
    if channels is not None:
        return tuple(channels)
    return tuple(c.value for c in Channel if c is not Channel.WEB)


def best_address(
    person: Person, channel: str | None = None, enabled: Collection[str] | None = None
) -> Address | None:
    """The address row to write to `person` at, or None when none is reachable.

    Only rows with a chat to write to, on an enabled channel (None: any), count. Among them:
    the channel asked for; then the one they last wrote from; then the channel they prefer;
    then the newest.
    """
    usable = [
        row
        for row in person.addresses
        if row.chat_id and (enabled is None or row.channel in enabled)
    ]
    if not usable:
        return None
    never = datetime.min

    def rank(row: Address) -> tuple[bool, datetime, bool, int]:
        wrote = row.last_inbound_at.replace(tzinfo=None) if row.last_inbound_at else never
        return (
            row.channel == channel,
            wrote,
            row.channel == person.preferred_channel,
            row.id or 0,
        )

    return max(usable, key=rank)
