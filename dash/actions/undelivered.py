"""A message the provider refused because the person's reply window was closed (WhatsApp's
24 hours with no approved template): it goes again on the channel's fallback to the same
address, or it is recorded failed and whoever it was sent for learns the truth."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.actions.outbox import record_failure
from dash.actions.people import add_address
from dash.actions.queueing import queue_message, queue_to_person
from dash.models import Address, Message, OutboxItem, OutboxState, Person, Team
from dash.reach import ReplyWindow, closed_window
from dash.settings import get_settings
from dash.texts import render
from dash.timeutil import utcnow


def window_closed(
    session: Session,
    outbox_id: int,
    *,
    fallback: str | None,
    code: str | None,
    detail: str,
    report: bool = True,
) -> str:
    """Handle outbox row `outbox_id` refused for a closed reply window.

    `fallback` is the channel that reaches the same address, when the deployment sends on it.
    Returns "rerouted" (queued again there), "reported" (failed; the key contact of a sign-off
    request is told, a coach's message flags the team on Today) or "failed".
    """
    item = session.get(OutboxItem, outbox_id)
    if item is None:
        return "failed"
    person = session.get(Person, item.person_id) if item.person_id else None
    if fallback and person is not None and _reach_on(session, person, fallback, item.address):
        record_failure(
            session,
            outbox_id,
            code=code,
            detail=f"{detail}; sent again by {fallback}",
            state=OutboxState.CANCELLED.value,
        )
        payload = {k: v for k, v in (item.payload or {}).items() if k != "template"}
        queue_message(
            session,
            channel=fallback,
            address=item.address,
            text=item.message.text,
            person=person,
            team=item.team_id,
            priority=item.priority,
            kind=item.message.kind,
            author_id=item.message.author_id,
            payload=payload,
            even_if_opted_out=False,
        )
        return "rerouted"
    record_failure(session, outbox_id, code=code, detail=detail)
    return "reported" if report and _tell_sender(session, item, person) else "failed"


def closed_windows(
    session: Session,
    messages: list[Message],
    windows: Mapping[str, ReplyWindow],
    enabled: Collection[str] | None,
) -> list[tuple[Message, str, str | None]]:
    """Messages just queued (a coach's reply) to people whose reply window is closed, dealt
    with now rather than refused by the provider later: each goes on the fallback channel or
    is recorded failed. Returns (message, "rerouted" | "failed", fallback) for each; the
    caller tells whoever sent them (the coach is on the page)."""
    now = utcnow()
    found: list[tuple[Message, str, str | None]] = []
    for message in messages:
        if message.person_id is None or message.id is None:
            continue
        row = session.execute(
            select(Address).where(
                Address.person_id == message.person_id,
                Address.channel == message.channel,
                Address.chat_id == message.address,
            )
        ).scalars().first()
        window = closed_window(row, windows, now) if row is not None else None
        if window is None:
            continue
        item_id = session.execute(
            select(OutboxItem.id).where(OutboxItem.message_id == message.id)
        ).scalar_one_or_none()
        if item_id is None:
            continue
        fallback = window.fallback if enabled is None or window.fallback in enabled else None
        outcome = window_closed(
            session,
            item_id,
            fallback=fallback,
            code=None,
            detail="outside the reply window, with no approved template",
            report=False,
        )
        found.append((message, outcome, fallback if outcome == "rerouted" else None))
    return found


def _reach_on(session: Session, person: Person, channel: str, address: str) -> bool:
    """Whether `person` may be written to at `address` on `channel` (their row added if new);
    not when someone else holds that address there."""
    holder = session.execute(
        select(Address).where(Address.channel == channel, Address.address == address)
    ).scalar_one_or_none()
    if holder is not None:
        return holder.person_id == person.id
    add_address(session, person, channel, address)
    return True


def _tell_sender(session: Session, item: OutboxItem, person: Person | None) -> bool:
    """Whoever the failed message was sent for learns it did not arrive."""
    team = session.get(Team, item.team_id) if item.team_id else None
    if team is None:
        return False
    if item.message.kind == "signoff" and team.key_contact_id:
        contact = session.get(Person, team.key_contact_id)
        if contact is None or (person is not None and contact.id == person.id):
            return False
        from dash.actions.enrolment import _secret, signoff_url

        settings = get_settings()
        text = render(
            "signoff_forward_link",
            contact.language,
            leader_name=person.name if person else "",
            link=signoff_url(settings, _secret(session), team),
            link_hours=settings.link_ttl_hours,
            must_write_first=True,
        )
        return queue_to_person(session, contact, text, team=team, kind="reply") is not None
    if item.message.author_id is not None:
        # A coach's message: the team shows on Today as waiting for them, the failure in its thread.
        if team.needs_coach_since is None:
            team.needs_coach_since = utcnow()
        return True
    return False
