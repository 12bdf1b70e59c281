"""People as the chat channels see them: who sent this, which teams they are in, what the bot
is waiting for them to answer (their PendingQuestion), and joining a team."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dash.models import Channel, Membership, PendingQuestion, Person, Role, Team, TeamState
from dash.texts import language_of
from dash.timeutil import utcnow

#: How long a chosen team is remembered when a person belongs to several.
TEAM_MEMORY = timedelta(hours=12)
#: The resting state of a pending-question row: nothing asked, only the remembered team.
IDLE = "idle"


#: The Person attribute that identifies a sender, per channel.
_SENDER_ATTRIBUTE = {
    Channel.SMS.value: "phone_e164",
    Channel.WHATSAPP.value: "whatsapp_e164",
    Channel.TELEGRAM.value: "telegram_user_id",
    Channel.CONSOLE.value: "console_address",
}
#: Who sent a message, per channel; built once, as every inbound message asks.
_PERSON_BY_ADDRESS = {
    channel: select(Person).where(getattr(Person, name) == bindparam("sender"))
    for channel, name in _SENDER_ATTRIBUTE.items()
}
#: The senders of a batch of messages, per channel, in one query.
_PEOPLE_BY_ADDRESSES = {
    channel: select(Person).where(getattr(Person, name).in_(bindparam("senders", expanding=True)))
    for channel, name in _SENDER_ATTRIBUTE.items()
}
#: session.info keys of what `remember_people` looked up: people by (channel, sender), and
#: by person id their pending-question row (None: none) and their teams in membership order.
_SENDERS = "dash.people.senders"
_PENDING = "dash.people.pending"
_TEAMS = "dash.people.teams"


def _sender_value(channel: str, sender: str) -> str | int | None:
    if channel not in _SENDER_ATTRIBUTE:
        return None
    if channel == Channel.TELEGRAM.value:
        return int(sender) if sender.lstrip("-").isdigit() else None
    return sender


def person_for(session: Session, channel: str, sender: str) -> Person | None:
    """The person behind `sender` on `channel` (phone, Telegram user id, console address)."""
    value = _sender_value(channel, sender)
    if value is None:
        return None
    known = session.info.get(_SENDERS, {}).get((channel, value))
    # Looked up with the batch, and still theirs (an address can move to another person).
    if known is not None and getattr(known, _SENDER_ATTRIBUTE[channel]) == value:
        return known
    return session.execute(_PERSON_BY_ADDRESS[channel], {"sender": value}).scalar_one_or_none()


def remember_people(session: Session, senders: list[tuple[str, str]]) -> None:
    """Look up at once, for many (channel, sender) pairs, what each message asks about its
    sender: the person (`person_for`), their pending question (`pending_of`) and their teams
    (`teams_of`).

    Why: a batch of inbound messages (dash.engine.handle_inbound_many) asked three queries per
    message. What is remembered stays right for the rest of the transaction: people not found
    are looked up again when asked (someone an earlier message created is found); questions
    and memberships are only ever added here, in this module (`ask`, `remember_team`,
    `add_role`), which update what is remembered; a team's state is read from the team itself.
    """
    wanted: dict[str, set[str | int]] = {}
    for channel, sender in senders:
        value = _sender_value(channel, sender)
        if value is not None:
            wanted.setdefault(channel, set()).add(value)
    known: dict[tuple[str, str | int], Person] = session.info.setdefault(_SENDERS, {})
    found: dict[int, Person] = {}
    for channel, values in wanted.items():
        name = _SENDER_ATTRIBUTE[channel]
        for person in session.execute(
            _PEOPLE_BY_ADDRESSES[channel], {"senders": sorted(values, key=str)}
        ).scalars():
            known[(channel, getattr(person, name))] = person
            found[person.id] = person
    if not found:
        return
    ids = sorted(found)
    with session.no_autoflush:  # as _pending_row and teams_of: a flush could not change these
        pending: dict[int, PendingQuestion | None] = dict.fromkeys(ids)
        for row in session.execute(_PENDING_ROWS, {"person_ids": ids}).scalars():
            pending[row.person_id] = row
        teams: dict[int, list[Team]] = {person_id: [] for person_id in ids}
        for person_id, team in session.execute(_TEAMS_OF_MANY, {"person_ids": ids}):
            if team not in teams[person_id]:
                teams[person_id].append(team)
    session.info.setdefault(_PENDING, {}).update(pending)
    session.info.setdefault(_TEAMS, {}).update(teams)


def person_by_telegram_username(session: Session, username: str) -> Person | None:
    """A person named by '@username' (a leader the key contact named) not yet seen on Telegram."""
    name = username.lstrip("@").lower()
    if not name:
        return None
    for person in session.execute(
        select(Person).where(
            Person.telegram_username.is_not(None), Person.telegram_user_id.is_(None)
        )
    ).scalars():
        if (person.telegram_username or "").lstrip("@").lower() == name:
            return person
    return None


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


def attach_address(person: Person, channel: str, sender: str, address: str = "") -> None:
    """Remember how to reach `person` on `channel` (and prefer the channel they used last)."""
    if channel == Channel.SMS.value:
        person.phone_e164 = sender
    elif channel == Channel.WHATSAPP.value:
        person.whatsapp_e164 = sender
    elif channel == Channel.TELEGRAM.value:
        person.telegram_user_id = int(sender)
        if address and address == sender:  # a private chat; groups are the team's
            person.telegram_chat_id = int(address)
    elif channel == Channel.CONSOLE.value:
        person.console_address = sender
    if channel != Channel.WEB.value:
        person.preferred_channel = channel


def set_language(session: Session, person: Person, language: str) -> None:
    """The language the person reads (en or es)."""
    person.language = language_of(language)


# -- teams ---------------------------------------------------------------------------------


_TEAMS_OF = (
    select(Team)
    .join(Membership, Membership.team_id == Team.id)
    .where(Membership.person_id == bindparam("person_id"))
    .order_by(Membership.joined_at, Team.id)
)
_ACTIVE_TEAMS_OF = _TEAMS_OF.where(Team.state == TeamState.ENROLLED.value)
_TEAMS_OF_MANY = (
    select(Membership.person_id, Team)
    .join(Team, Membership.team_id == Team.id)
    .where(Membership.person_id.in_(bindparam("person_ids", expanding=True)))
    .order_by(Membership.person_id, Membership.joined_at, Team.id)
)


def teams_of(session: Session, person: Person, *, active_only: bool = True) -> list[Team]:
    """The teams `person` belongs to (any role), oldest membership first, each once."""
    remembered = session.info.get(_TEAMS, {}).get(person.id)
    if remembered is not None:  # see remember_people
        if not active_only:
            return list(remembered)
        return [team for team in remembered if team.state == TeamState.ENROLLED.value]
    # Teams and memberships are flushed where they are added; only a team's changed state
    # (not yet flushed) could change the answer, so other pending changes are not flushed
    # first (see _pending_row).
    if any(isinstance(obj, Team) for obj in session.dirty):
        session.flush()
    query = _ACTIVE_TEAMS_OF if active_only else _TEAMS_OF
    with session.no_autoflush:
        teams = session.execute(query, {"person_id": person.id}).scalars()
        return list(dict.fromkeys(teams))


def roles_in(session: Session, person: Person, team: Team) -> set[str]:
    return set(
        session.execute(
            select(Membership.role).where(
                Membership.person_id == person.id, Membership.team_id == team.id
            )
        ).scalars()
    )


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
    session.info.get(_TEAMS, {}).pop(person.id, None)  # asked again from the database
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


def addresses_of(person: Person) -> list[tuple[str, str]]:
    """(channel, address) for each channel that reaches `person`; a Telegram user is shown
    by @username when known (their chat id means nothing to a reader)."""
    found = []
    if person.telegram_chat_id or person.telegram_user_id:
        name = person.telegram_username
        found.append((Channel.TELEGRAM.value, f"@{name}" if name else ""))
    if person.whatsapp_e164:
        found.append((Channel.WHATSAPP.value, person.whatsapp_e164))
    if person.phone_e164:
        found.append((Channel.SMS.value, person.phone_e164))
    if person.console_address:
        found.append((Channel.CONSOLE.value, person.console_address))
    return found


def team_for_group(session: Session, chat_id: str) -> Team | None:
    """The team whose Telegram group this is."""
    if not chat_id.lstrip("-").isdigit():
        return None
    return session.execute(
        select(Team).where(Team.telegram_group_chat_id == int(chat_id))
    ).scalar_one_or_none()


def link_group(session: Session, team: Team, chat_id: str) -> None:
    """Make a Telegram group the team's place: the team's messages go there once."""
    previous = team_for_group(session, chat_id)
    if previous is not None and previous.id != team.id:
        previous.telegram_group_chat_id = None
        session.flush()
    team.telegram_group_chat_id = int(chat_id)


def unlink_group(session: Session, chat_id: str) -> None:
    """A group chat refused us or is gone: its team's members are reached one by one again."""
    team = team_for_group(session, chat_id)
    if team is not None:
        team.telegram_group_chat_id = None


# -- pending questions -----------------------------------------------------------------------


#: Built once (every inbound message reads it): building it cost as much CPU as running it.
_PENDING_ROW = select(PendingQuestion).where(PendingQuestion.person_id == bindparam("person_id"))
_PENDING_ROWS = select(PendingQuestion).where(
    PendingQuestion.person_id.in_(bindparam("person_ids", expanding=True))
)


def _pending_row(session: Session, person: Person) -> PendingQuestion | None:
    """The person's pending-question row, whatever its flow (idle included).

    Without autoflush: a new row is flushed where it is added (`ask`, `remember_team`) and a
    changed one comes back from the identity map as changed, so flushing first could not
    change the answer; it would only make an inbound message's own updates take a flush of
    their own instead of going out with its reply's.
    """
    remembered = session.info.get(_PENDING)
    if remembered is not None and person.id in remembered:  # see remember_people
        return remembered[person.id]
    with session.no_autoflush:
        return session.execute(_PENDING_ROW, {"person_id": person.id}).scalar_one_or_none()


def _new_pending_row(session: Session, row: PendingQuestion) -> None:
    session.add(row)
    remembered = session.info.get(_PENDING)
    if remembered is not None:
        remembered[row.person_id] = row


def pending_of(session: Session, person: Person) -> PendingQuestion | None:
    """The question the bot waits for `person` to answer (None when nothing is asked)."""
    row = _pending_row(session, person)
    if row is None or row.flow == IDLE:
        return None
    return row


#: Keys of PendingQuestion.data that survive questions: the team the person last chose.
_MEMORY_KEYS = ("chosen_team", "chosen_at")


def _memory(row: PendingQuestion | None) -> dict[str, Any]:
    data = (row.data or {}) if row is not None else {}
    return {k: data[k] for k in _MEMORY_KEYS if k in data}


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
    row = _pending_row(session, person)
    if row is None:
        row = PendingQuestion(person_id=person.id, flow=flow, step=step, failures=0)
        _new_pending_row(session, row)
    elif (row.flow, row.step) != (flow, step):
        row.failures = 0
    memory = _memory(row)
    row.flow = flow
    row.step = step
    row.team_id = team.id if team is not None else row.team_id
    row.data = {**dict(data or {}), **memory}
    row.asked_at = utcnow()
    session.flush()
    return row


def clear_pending(session: Session, person: Person) -> None:
    """Nothing is asked any more; the team the person chose is still remembered a while."""
    row = _pending_row(session, person)
    if row is not None:
        row.flow = IDLE
        row.step = ""
        row.data = _memory(row)
        row.failures = 0
        row.asked_at = utcnow()


def remember_team(session: Session, person: Person, team: Team) -> None:
    """Remember which of their teams `person` is talking about (see TEAM_MEMORY)."""
    row = _pending_row(session, person)
    memory = {"chosen_team": team.id, "chosen_at": utcnow().isoformat()}
    if row is None:
        _new_pending_row(
            session,
            PendingQuestion(person_id=person.id, flow=IDLE, step="", team_id=team.id, data=memory),
        )
    else:
        row.data = {**(row.data or {}), **memory}
    session.flush()


def remembered_team(session: Session, person: Person, now: datetime | None = None) -> int | None:
    """The team id `person` chose (or joined) recently, if any."""
    row = _pending_row(session, person)
    memory = _memory(row)
    if "chosen_team" not in memory:
        return None
    try:
        chosen_at = datetime.fromisoformat(str(memory.get("chosen_at")))
    except ValueError:
        return None
    if (now or utcnow()) - chosen_at > TEAM_MEMORY:
        return None
    return int(memory["chosen_team"])
