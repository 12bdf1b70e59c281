"""Changes to people as the chat channels see them: their addresses, roles, group chats and
the question the bot waits for them to answer (reads: dash.queries.people)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.models import (
    Address,
    Channel,
    Membership,
    Message,
    PendingQuestion,
    Person,
    Role,
    Team,
)
from dash.queries.people import (
    IDLE,
    PENDING_KEY,
    TEAMS_KEY,
    memory_of,
    pending_row,
    roles_in,
    team_for_group,
)
from dash.texts import language_of
from dash.timeutil import utcnow


def create_person(
    session: Session,
    *,
    channel: str,
    sender: str,
    address: str = "",
    name: str = "",
    language: str | None = None,
) -> Person:
    """A new person reachable where they wrote from."""
    person = Person(name=name.strip()[:200], language=language_of(language))
    attach_address(person, channel, sender, address)
    session.add(person)
    session.flush()
    return person


def attach_address(person: Person, channel: str, sender: str, address: str = "") -> Address:
    """Remember how to reach `person` on `channel` (and prefer the channel they used last).

    `address` is the chat the message came from: the sender's own (a private chat) becomes
    where messages to them go; a group's is the team's, not theirs.
    """
    row = next(
        (
            a
            for a in person.addresses
            if a.channel == channel and a.address in (sender, None)
        ),
        None,
    )
    if row is None:
        row = Address(channel=channel, address=sender)
        person.addresses.append(row)
    row.address = sender
    row.verified = True
    if address and address == sender:
        row.chat_id = address
    if channel != Channel.WEB.value:
        person.preferred_channel = channel
    return row


def add_address(
    session: Session,
    person: Person,
    channel: str,
    address: str | None,
    *,
    display: str | None = None,
) -> Address:
    """A typed address for `person` (a leader's phone or e-mail, a coach's e-mail): where
    messages go, not yet confirmed by a message from it. Idempotent."""
    for row in person.addresses:
        if row.channel == channel and row.address == address and row.display == display:
            return row
    row = Address(channel=channel, address=address, chat_id=address, display=display)
    person.addresses.append(row)
    session.flush()
    return row


def note_inbound(row: Address, chat: str, when: datetime, *, private: bool) -> None:
    """`row`'s owner wrote from it at `when`: a reply window opens, and a private chat is
    where messages to them go."""
    row.last_inbound_at = when
    if private and chat and row.chat_id != chat:
        row.chat_id = chat


def attribute_message(message: Message, person: Person) -> None:
    """`message` is `person`'s: it shows under their name in the team's thread."""
    message.person_id = person.id
    message.author_id = person.id


def mark_privacy_reminded(person: Person, when: datetime) -> None:
    """`person` was reminded not to send identifying details (once is enough)."""
    person.privacy_reminded_at = when


def set_language(session: Session, person: Person, language: str) -> None:
    """The language the person reads (en or es)."""
    person.language = language_of(language)


# -- teams ---------------------------------------------------------------------------------


def add_role(session: Session, team: Team, person: Person, role: str) -> Membership:
    """Give `person` `role` in `team` (idempotent)."""
    existing = session.execute(
        select(Membership).where(
            Membership.team_id == team.id,
            Membership.person_id == person.id,
            Membership.role == role,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    membership = Membership(team_id=team.id, person_id=person.id, role=role)
    session.add(membership)
    session.flush()
    session.info.get(TEAMS_KEY, {}).pop(person.id, None)  # asked again from the database
    return membership


def join_team(session: Session, team: Team, person: Person) -> tuple[Membership, bool]:
    """Add `person` to `team` as a member; (membership, whether they were already in it).

    The first person to join after the key contact also becomes a data reporter, so every
    team has a second person the daily prompts reach (the key contact is the first).
    """
    already = bool(roles_in(session, person, team))
    membership = add_role(session, team, person, Role.MEMBER.value)
    if not already:
        reporters = session.execute(
            select(Membership.person_id).where(
                Membership.team_id == team.id,
                Membership.role == Role.DATA_REPORTER.value,
                Membership.person_id != team.key_contact_id,
            )
        ).first()
        if reporters is None and person.id != team.key_contact_id:
            add_role(session, team, person, Role.DATA_REPORTER.value)
    return membership, already


def unlink_group(team: Team) -> None:
    """The team's group is gone (the bot was removed): members are reached one by one again."""
    team.group_channel = None
    team.group_address = None


def group_gone(session: Session, channel: str, address: str) -> None:
    """The provider refused a group chat: whichever team it was is unlinked."""
    team = team_for_group(session, channel, address)
    if team is not None:
        unlink_group(team)


def group_moved(session: Session, channel: str, old: str, new: str) -> None:
    """A group chat got a new address (a Telegram group became a supergroup): follow it."""
    team = team_for_group(session, channel, old)
    if team is not None:
        team.group_address = new


def link_group(session: Session, team: Team, channel: str, address: str) -> None:
    """Make a group chat the team's place: the team's messages go there once."""
    previous = team_for_group(session, channel, address)
    if previous is not None and previous.id != team.id:
        unlink_group(previous)
        session.flush()
    team.group_channel = channel
    team.group_address = address


# -- pending questions -----------------------------------------------------------------------


def _new_pending_row(session: Session, row: PendingQuestion) -> None:
    session.add(row)
    remembered = session.info.get(PENDING_KEY)
    if remembered is not None:
        remembered[row.person_id] = row


def ask(
    session: Session,
    person: Person,
    flow: str,
    step: str,
    *,
    team: Team | None = None,
    data: dict[str, Any] | None = None,
) -> PendingQuestion:
    """Record that `person` is now asked `flow`/`step` (replacing any earlier question).

    Failures reset when the question changes, and are kept when the same one is asked again.
    """
    row = pending_row(session, person)
    if row is None:
        row = PendingQuestion(person_id=person.id, flow=flow, step=step, failures=0)
        _new_pending_row(session, row)
    elif (row.flow, row.step) != (flow, step):
        row.failures = 0
    memory = memory_of(row)
    row.flow = flow
    row.step = step
    row.team_id = team.id if team is not None else row.team_id
    row.data = {**dict(data or {}), **memory}
    row.asked_at = utcnow()
    session.flush()
    return row


def clear_pending(session: Session, person: Person) -> None:
    """Nothing is asked any more; the team the person chose is still remembered a while."""
    row = pending_row(session, person)
    if row is not None:
        row.flow = IDLE
        row.step = ""
        row.data = memory_of(row)
        row.failures = 0
        row.asked_at = utcnow()


def remember_team(session: Session, person: Person, team: Team) -> None:
    """Remember which of their teams `person` is talking about (see TEAM_MEMORY)."""
    row = pending_row(session, person)
    memory = {"chosen_team": team.id, "chosen_at": utcnow().isoformat()}
    if row is None:
        _new_pending_row(
            session,
            PendingQuestion(person_id=person.id, flow=IDLE, step="", team_id=team.id, data=memory),
        )
    else:
        row.data = {**(row.data or {}), **memory}
    session.flush()
