"""People with addresses, as the tests build and find them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dash.models import Address, Person
from dash.queries.people import person_for


def reachable(
    *,
    sms: str | None = None,
    whatsapp: str | None = None,
    telegram: int | str | None = None,
    console: str | None = None,
    email: str | None = None,
    last_inbound_at: datetime | None = None,
    **fields: Any,
) -> Person:
    """A Person (not yet added) with one address row for each channel given, written to at
    that same address (a Telegram private chat is the user's own id)."""
    person = Person(**fields)
    for channel, address in (
        ("telegram", telegram),
        ("whatsapp", whatsapp),
        ("sms", sms),
        ("console", console),
        ("email", email),
    ):
        if address is not None:
            person.addresses.append(
                Address(
                    channel=channel,
                    address=str(address),
                    chat_id=str(address),
                    last_inbound_at=last_inbound_at,
                    verified=True,
                )
            )
    return person


def person_at(session: Session, channel: str, address: str | int) -> Person:
    """The person who holds `address` on `channel` (there must be one)."""
    person = person_for(session, channel, str(address))
    assert person is not None, f"nobody at {channel} {address}"
    return person


def address_on(person: Person, channel: str) -> str | None:
    """`person`'s address on `channel`, if they have one."""
    return next((a.address for a in person.addresses if a.channel == channel), None)
