"""People as the chat channels see them: who sent this, which teams they are in, what the bot
is waiting for them to answer (their PendingQuestion), and joining a team."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dash.models import (
    Address,
    Channel,
    Membership,
    Message,
    PendingQuestion,
    Person,
    Role,
    Team,
    TeamState,
)
from dash.texts import language_of
from dash.timeutil import utcnow

#: How long a chosen team is remembered when a person belongs to several.
TEAM_MEMORY = timedelta(hours=12)
#: The resting state of a pending-question row: nothing asked, only the remembered team.
IDLE = "idle"


#: Who sent a message: their address row and its person, in one indexed lookup (the unique
#: (channel, address) key); built once, as every inbound message asks.
_ADDRESS_OF = (
    select(Address, Person)
    .join(Person, Address.person_id == Person.id)
    .where(Address.channel == bindparam("channel"), Address.address == bindparam("sender"))
)
#: The senders of a batch of messages on one channel, in one query.
_ADDRESSES_OF = (
    select(Address, Person)
    .join(Person, Address.person_id == Person.id)
    .where(
        Address.channel == bindparam("channel"),
        Address.address.in_(bindparam("senders", expanding=True)),
    )
)
#: session.info keys of what `remember_people` looked up: address rows by (channel, sender),
#: and by person id their pending-question row (None: none) and their teams in membership order.
_SENDERS = "dash.people.senders"
_PENDING = "dash.people.pending"
_TEAMS = "dash.people.teams"


def _identifies(channel: str, sender: str) -> bool:
    """Whether a sender on `channel` can be a person (the dashboard's own messages cannot)."""
    return bool(sender) and channel != Channel.WEB.value


def address_of(session: Session, channel: str, sender: str) -> Address | None:
    """The address row `sender` wrote from on `channel` (its person loaded with it)."""
    if not _identifies(channel, sender):
        return None
    known = session.info.get(_SENDERS, {}).get((channel, sender))
    # Looked up with the batch, and still theirs (an address can move to another person).
    if known is not None and known.address == sender and known.channel == channel:
        return known
    found = session.execute(_ADDRESS_OF, {"channel": channel, "sender": sender}).first()
    if found is None:
        return None
    row, person = found
    set_committed_value(row, "person", person)  # held: the identity map keeps it only weakly
    return row


def person_for(session: Session, channel: str, sender: str) -> Person | None:
    """The person behind `sender` on `channel` (phone, Telegram user id, console address)."""
    row = address_of(session, channel, sender)
    return row.person if row is not None else None


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
    wanted: dict[str, set[str]] = {}
    for channel, sender in senders:
        if _identifies(channel, sender):
            wanted.setdefault(channel, set()).add(sender)
    known: dict[tuple[str, str], Address] = session.info.setdefault(_SENDERS, {})
    found: dict[int, Person] = {}
    for channel, values in wanted.items():
        for row, person in session.execute(
            _ADDRESSES_OF, {"channel": channel, "senders": sorted(values)}
        ):
            set_committed_value(row, "person", person)  # held, as in address_of
            known[(channel, row.address)] = row
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


def person_by_display(
    session: Session, channel: str, display: str, *, only_unseen: bool = True
) -> Person | None:
    """A person named on `channel` by a display name (a leader the key contact named by
    '@username'); with `only_unseen`, only one who has not written from it yet."""
    name = display.lstrip("@").lower()
    if not name:
        return None
    query = select(Address).where(Address.channel == channel, Address.display.is_not(None))
    if only_unseen:
        query = query.where(Address.address.is_(None))
    for row in session.execute(query.order_by(Address.id)).scalars():
        if (row.display or "").lstrip("@").lower() == name:
            return row.person
    return None


def person_with_address(session: Session, address: str) -> Person | None:
    """The person holding `address` on any channel (a phone number typed by a key contact)."""
    return (
        session.execute(
            select(Person)
            .join(Address, Address.person_id == Person.id)
            .where(Address.address == address)
            .order_by(Address.id)
        )
        .scalars()
        .first()
    )


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


def team_for_group(session: Session, channel: str, address: str) -> Team | None:
    """The team whose group chat this is."""
    if not address:
        return None
    return session.execute(
        select(Team).where(Team.group_channel == channel, Team.group_address == address)
    ).scalar_one_or_none()


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
