"""Who a chat message is from and what the bot knows of them: their address row, their
teams and roles, the question it waits for them to answer and the team they last chose.

Reads only; dash.actions.people changes these. What `remember_people` looks up for a batch
is kept in `session.info` under the keys below, which the actions keep current."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dash.models import Address, Channel, Membership, PendingQuestion, Person, Team, TeamState
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
PENDING_KEY = "dash.people.pending"
TEAMS_KEY = "dash.people.teams"


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
    and memberships are only ever added by dash.actions.people (`ask`, `remember_team`,
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
    with session.no_autoflush:  # as pending_row and teams_of: a flush could not change these
        pending: dict[int, PendingQuestion | None] = dict.fromkeys(ids)
        for row in session.execute(_PENDING_ROWS, {"person_ids": ids}).scalars():
            pending[row.person_id] = row
        teams: dict[int, list[Team]] = {person_id: [] for person_id in ids}
        for person_id, team in session.execute(_TEAMS_OF_MANY, {"person_ids": ids}):
            if team not in teams[person_id]:
                teams[person_id].append(team)
    session.info.setdefault(PENDING_KEY, {}).update(pending)
    session.info.setdefault(TEAMS_KEY, {}).update(teams)


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
    remembered = session.info.get(TEAMS_KEY, {}).get(person.id)
    if remembered is not None:  # see remember_people
        if not active_only:
            return list(remembered)
        return [team for team in remembered if team.state == TeamState.ENROLLED.value]
    # Teams and memberships are flushed where they are added; only a team's changed state
    # (not yet flushed) could change the answer, so other pending changes are not flushed
    # first (see pending_row).
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


def team_for_group(session: Session, channel: str, address: str) -> Team | None:
    """The team whose group chat this is."""
    if not address:
        return None
    return session.execute(
        select(Team).where(Team.group_channel == channel, Team.group_address == address)
    ).scalar_one_or_none()


#: Built once (every inbound message reads it): building it cost as much CPU as running it.
_PENDING_ROW = select(PendingQuestion).where(PendingQuestion.person_id == bindparam("person_id"))
_PENDING_ROWS = select(PendingQuestion).where(
    PendingQuestion.person_id.in_(bindparam("person_ids", expanding=True))
)


def pending_row(session: Session, person: Person) -> PendingQuestion | None:
    """The person's pending-question row, whatever its flow (idle included).

    Without autoflush: a new row is flushed where it is added (`ask`, `remember_team`) and a
    changed one comes back from the identity map as changed, so flushing first could not
    change the answer; it would only make an inbound message's own updates take a flush of
    their own instead of going out with its reply's.
    """
    remembered = session.info.get(PENDING_KEY)
    if remembered is not None and person.id in remembered:  # see remember_people
        return remembered[person.id]
    with session.no_autoflush:
        return session.execute(_PENDING_ROW, {"person_id": person.id}).scalar_one_or_none()


def pending_of(session: Session, person: Person) -> PendingQuestion | None:
    """The question the bot waits for `person` to answer (None when nothing is asked)."""
    row = pending_row(session, person)
    if row is None or row.flow == IDLE:
        return None
    return row


#: Keys of PendingQuestion.data that survive questions: the team the person last chose.
MEMORY_KEYS = ("chosen_team", "chosen_at")


def memory_of(row: PendingQuestion | None) -> dict[str, Any]:
    data = (row.data or {}) if row is not None else {}
    return {k: data[k] for k in MEMORY_KEYS if k in data}


def remembered_team(session: Session, person: Person, now: datetime | None = None) -> int | None:
    """The team id `person` chose (or joined) recently, if any."""
    row = pending_row(session, person)
    memory = memory_of(row)
    if "chosen_team" not in memory:
        return None
    try:
        chosen_at = datetime.fromisoformat(str(memory.get("chosen_at")))
    except ValueError:
        return None
    if (now or utcnow()) - chosen_at > TEAM_MEMORY:
        return None
    return int(memory["chosen_team"])
