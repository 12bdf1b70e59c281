"""The channel types this build knows, in the order a person is reached, and what the
composition roots ask of them: which are enabled, their senders, their webhook routes."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from bots.channel import ChannelType
from bots.console import CONSOLE
from bots.email import EMAIL
from bots.telegram import TELEGRAM
from bots.twilio import SMS, WHATSAPP
from dash.reach import ReplyWindow

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bots.delivery import Sender
    from bots.intake import Intake
    from dash.context import AppContext
    from dash.settings import Settings

#: One line a channel.
CHANNEL_TYPES: list[ChannelType] = [
    TELEGRAM,
    WHATSAPP,
    SMS,
    EMAIL,
    CONSOLE,
]


def channel_types() -> list[ChannelType]:
    """Every channel type, enabled or not, in preference order."""
    return list(CHANNEL_TYPES)


def type_for(name: str) -> ChannelType:
    """The channel type called `name`; KeyError for one this build does not know."""
    for channel_type in CHANNEL_TYPES:
        if channel_type.name == name:
            return channel_type
    raise KeyError(name)


def enabled(settings: Settings) -> list[ChannelType]:
    """The channel types this deployment's settings enable, in preference order."""
    return [t for t in CHANNEL_TYPES if t.enabled(settings)]


def enabled_names(settings: Settings) -> tuple[str, ...]:
    """What a composition root gives AppContext as its `channels`."""
    return tuple(t.name for t in enabled(settings))


def reply_windows(names: Collection[str]) -> dict[str, ReplyWindow]:
    """What a composition root gives AppContext as its `reply_windows`: each of the enabled
    channels `names` with a reply window, and its fallback when that is enabled too."""
    return {
        t.name: ReplyWindow(t.reply_window, t.fallback if t.fallback in names else None)
        for t in CHANNEL_TYPES
        if t.name in names and t.reply_window is not None
    }


def build_senders(ctx: AppContext) -> dict[str, Sender]:
    """channel → Sender for every enabled channel. Rows of a channel not enabled stay
    queued (visible) rather than failing."""
    return {t.name: t.make_sender(ctx) for t in enabled(ctx.settings)}


def routes(ctx: AppContext, intake: Intake) -> list[BaseRoute]:
    """Every channel type's webhook routes, sharing one intake."""
    found: list[BaseRoute] = []
    for channel_type in CHANNEL_TYPES:
        found += channel_type.routes(ctx, intake)
    return found


def address_label(channel: str, address: str) -> str:
    """How the dashboard shows an address (AppContext.address_label in a running app)."""
    try:
        return type_for(channel).masked(address)
    except KeyError:
        return channel


def preload(types: Iterable[ChannelType] | None = None) -> None:
    """Import what the channels' senders need (a worker settles its heap after this)."""
    for channel_type in CHANNEL_TYPES if types is None else types:
        channel_type.preload()
