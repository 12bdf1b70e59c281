"""What every running part needs: settings, the database and the secret key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dash.db import Database, database_from, secret_key
from dash.settings import Settings, get_settings

#: How the dashboard shows (channel, address): enough to recognise, never a full number.
AddressLabel = Callable[[str, str], str]


def plain_label(channel: str, address: str) -> str:
    """The label when no channel registry is wired in: the channel and an address's tail."""
    return f"{channel} …{address[-4:]}" if address[-4:].isdigit() else channel


@dataclass
class AppContext:
    """Passed to the web app, the bots and the scheduler instead of globals.

    `channels` are the channels this deployment sends on, in the order a person is reached
    (names only: the core never imports the channels themselves). The composition roots in
    dash.app pass the registry's enabled ones; None (a context built elsewhere, as in tests)
    means any channel a person has an address on (dash.reach.enabled_channels).
    `address_label` is how the dashboard shows an address; the server wires in the
    registry's (each channel type's own), the plain one serves contexts built elsewhere.
    `reply_windows` are the channels that take free-form messages only after the person
    wrote (channel → dash.reach.ReplyWindow), wired in from the registry likewise.
    """

    settings: Settings
    db: Database
    secret: str
    channels: tuple[str, ...] | None = None
    address_label: AddressLabel = field(default=plain_label)
    reply_windows: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        db: Database | None = None,
        channels: tuple[str, ...] | None = None,
    ) -> AppContext:
        settings = settings or get_settings()
        db = db or database_from(settings)
        return cls(settings=settings, db=db, secret=secret_key(db, settings), channels=channels)
