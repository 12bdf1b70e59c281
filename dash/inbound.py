"""The one shape every channel adapter turns a provider's message into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class InboundMessage:
    """A message from a person, normalised by an adapter, before anything is decided.

    `provider_id` is what makes a repeated delivery a no-op (Telegram `update_id`,
    Twilio `MessageSid`, a console counter). `address` is where replies go (phone in
    E.164, Telegram chat id, console address); `sender` identifies the person
    (same as address except in Telegram groups, where it is `from.id`).
    """

    channel: str
    provider_id: str
    address: str
    sender: str
    text: str
    received_at: datetime
    raw: dict[str, Any]
    sender_name: str = ""
    language: str | None = None
    is_group: bool = False
    group_title: str = ""
    callback_data: str | None = None
    callback_id: str | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    event: str = "message"  # "message", "bot_added", "bot_removed", "blocked"
    #: Why the adapter found it unusable (an id past 64 bits, say): stored marked, not processed.
    rejected: str | None = None
    #: The provider itself answers STOP (and START) on this channel, so the bot stays silent.
    provider_confirms_stop: bool = False
    provider_confirms_start: bool = False
    #: What the sender's address is to them ("number" on phone channels, "account" where they
    #: are known by an account): the greeting to a stranger names it.
    address_kind: str = "number"
