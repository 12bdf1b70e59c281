"""Who reads a message: a person's address, a team's people and its group chat."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dash.models import Person, Team
from dash.reach import best_address


def address_for(
    person: Person, channel: str | None = None, *, enabled: Collection[str] | None = None
) -> tuple[str, str] | None:
    """(channel, address) to reach `person` on an enabled channel (None: any): the channel
    asked for, else the one they use (dash.reach.best_address)."""
    row = best_address(person, channel, enabled)
    return (row.channel, str(row.chat_id)) if row is not None else None


def team_people(session: Session, team: Team, roles: tuple[str, ...] | None = None) -> list[Person]:
    """People of `team` holding any of `roles` (all members when None), each once, not opted out."""
    from dash.models import Membership

    query = (
        select(Person)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.team_id == team.id, Person.opted_out_at.is_(None))
        .order_by(Person.id)
        .options(selectinload(Person.addresses))  # where each is reached, in one query
    )
    if roles:
        query = query.where(Membership.role.in_(roles))
    return list(dict.fromkeys(session.execute(query).scalars()))


def group_language(session: Session, team: Team) -> str:
    """The language a team's group chat reads: the one most of its members use."""
    from dash.models import Membership
    from dash.texts import language_of

    languages = session.execute(
        select(Person.language)
        .join(Membership, Membership.person_id == Person.id)
        .where(Membership.team_id == team.id)
    ).scalars()
    counts: dict[str, int] = {}
    for lang in languages:
        key = language_of(lang)
        counts[key] = counts.get(key, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k]) if counts else "en"


@dataclass(frozen=True)
class Recipient:
    """One reader of a team message: a person, or the team's Telegram group (person None)."""

    person: Person | None
    channel: str
    address: str
    lang: str
    name: str


def team_recipients(
    team: Team,
    people: list[Person],
    *,
    group_lang: str | Callable[[], str],
    members: set[int] | None = None,
    group: bool = True,
    enabled: Collection[str] | None = None,
) -> list[Recipient]:
    """The team's group chat (when it has one and `group`) and each of `people` who is not
    reached through it, each once; opted-out and unreachable people are left out.

    Shared by `queue_to_team` and the scheduler's steps so both pick recipients the same way.
    A person reads the group instead when their channel is the group's and they are a member
    (`members`: the team's person ids; None means everyone in `people` is one).
    `group_lang` is the group's language, or a function computing it only when needed.
    `enabled`: the channels the deployment sends on (None: any).
    """
    from dash.texts import language_of

    found: list[Recipient] = []
    has_group = (
        group
        and team.group_address is not None
        and (enabled is None or team.group_channel in enabled)
    )
    if has_group:
        lang = group_lang if isinstance(group_lang, str) else group_lang()
        found.append(
            Recipient(None, str(team.group_channel), str(team.group_address), lang, team.name)
        )
    seen: set[int] = set()
    for person in people:
        if person.id in seen or person.opted_out:
            continue
        seen.add(person.id)
        target = address_for(person, enabled=enabled)
        if target is None:
            continue
        is_member = members is None or person.id in members
        if has_group and target[0] == team.group_channel and is_member:
            continue  # they read the group
        found.append(
            Recipient(
                person, target[0], target[1], language_of(person.language), person.name or team.name
            )
        )
    return found
