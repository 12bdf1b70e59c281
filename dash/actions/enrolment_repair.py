"""A coach or admin repairs an enrolment stuck half-way, from the dashboard: pick it up where it
stopped, start it over, or name the leader.

Minimal versions kept apart from dash.actions.enrolment (where another branch adds fuller
ones with the same signatures): the dashboard calls these names only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy.orm import Session

from dash.actions.enrolment import reopen_matrix, request_signoff, set_leader
from dash.actions.people import add_address, ask, clear_pending
from dash.actions.queueing import queue_to_person
from dash.errors import UserError
from dash.models import MATRIX_CRITERIA, Person, Team, TeamState
from dash.parsing import parse_leader
from dash.phones import BadPhoneNumber, to_e164
from dash.queries.enrolment import latest_matrix
from dash.queries.people import pending_of, person_by_display, person_with_address
from dash.settings import get_settings
from dash.texts import render

#: The states an enrolment can be repaired in (an enrolled team is past it).
UNFINISHED = (
    TeamState.AWAITING_MATRIX.value,
    TeamState.AWAITING_SIGNOFF.value,
    TeamState.DECLINED.value,
)


def _key_contact(session: Session, team: Team) -> Person:
    if team.state not in UNFINISHED:
        raise UserError(f"{team.name} is {team.state}: there is no enrolment to repair")
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    if contact is None:
        raise UserError(f"{team.name} has no key contact to ask")
    return contact


def _ask_score(
    session: Session,
    team: Team,
    contact: Person,
    index: int,
    scores: Mapping[str, int],
    revision: int,
    enabled: Collection[str] | None,
    intro: str,
) -> str:
    criterion = MATRIX_CRITERIA[index]
    step = f"score:{criterion}"
    ask(
        session,
        contact,
        "enrol",
        step,
        team=team,
        data={"team_id": team.id, "scores": dict(scores), "revision": revision},
    )
    text = "\n".join(
        [
            render(intro, contact.language, team_name=team.name),
            render(
                "matrix_question",
                contact.language,
                criterion=criterion,
                number=index + 1,
                count=len(MATRIX_CRITERIA),
                first=index == 0,
            ),
        ]
    )
    buttons = [[{"text": str(n), "data": f"score:{criterion}:{n}"} for n in range(1, 6)]]
    queue_to_person(session, contact, text, team=team, payload={"buttons": buttons}, enabled=enabled)
    return step


def resume_enrolment(
    session: Session,
    team: Team,
    by: Person | None,
    *,
    enabled: Collection[str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> str:
    """Ask again what the enrolment waits for; returns the step asked: a matrix score
    ('score:…'), the leader ('leader_name'), or the leader's sign-off ('signoff', or
    'signoff_unreached' when they cannot be messaged yet: forward them the link)."""
    contact = _key_contact(session, team)
    if team.state == TeamState.DECLINED.value:
        reopen_matrix(session, team)
    if team.state == TeamState.AWAITING_SIGNOFF.value and team.leader_id is not None:
        reached = request_signoff(session, team, enabled=enabled, windows=windows)
        return "signoff" if reached is not None else "signoff_unreached"
    if team.state == TeamState.AWAITING_SIGNOFF.value:  # a matrix, but no leader named
        ask(session, contact, "enrol", "leader_name", team=team, data={"team_id": team.id})
        text = "\n".join(
            [
                render("enrol_repair_resumed", contact.language, team_name=team.name),
                render("enrol_ask_leader_name_again", contact.language),
            ]
        )
        queue_to_person(session, contact, text, team=team, enabled=enabled)
        return "leader_name"
    pending = pending_of(session, contact)
    data = dict(pending.data or {}) if pending is not None and pending.team_id == team.id else {}
    scores = {k: int(v) for k, v in dict(data.get("scores") or {}).items() if k in MATRIX_CRITERIA}
    index = next((i for i, c in enumerate(MATRIX_CRITERIA) if c not in scores), 0)
    previous = latest_matrix(session, team)
    revision = int(data.get("revision") or ((previous.revision + 1) if previous else 1))
    return _ask_score(
        session, team, contact, index, scores, revision, enabled, "enrol_repair_resumed"
    )


def restart_enrolment(
    session: Session,
    team: Team,
    by: Person | None,
    *,
    enabled: Collection[str] | None = None,
) -> str:
    """Start the matrix over from its first score; the leader named so far is forgotten (and
    no longer asked). Earlier matrix revisions stay on record. Returns the step asked."""
    contact = _key_contact(session, team)
    if team.leader_id is not None:
        leader = session.get(Person, team.leader_id)
        pending = pending_of(session, leader) if leader is not None else None
        if leader is not None and pending is not None and pending.flow == "signoff":
            clear_pending(session, leader)
    team.leader_id = None
    team.state = TeamState.AWAITING_MATRIX.value
    previous = latest_matrix(session, team)
    revision = (previous.revision + 1) if previous else 1
    return _ask_score(session, team, contact, 0, {}, revision, enabled, "enrol_repair_restarted")


def set_leader_contact(
    session: Session,
    team: Team,
    by: Person | None,
    *,
    name: str,
    contact: str,
    role: str = "",
    enabled: Collection[str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> tuple[Person, bool]:
    """Name or correct the leader: `contact` is a mobile number or @username, reached where
    the key contact is (a number on the key contact's phone channel, a @username on theirs
    when it is an account), or ME for the key contact. When the matrix is done the leader is
    asked to sign off at once. Returns the leader and whether the request could be queued."""
    key_contact = _key_contact(session, team)
    parsed = parse_leader(contact)
    kind = "" if parsed is None else parsed[0]
    if kind == "me":
        leader = key_contact
    elif kind == "phone" or (parsed is not None and parsed[1].startswith("@")):
        leader = _leader_at(session, key_contact, kind, parsed[1] if parsed else "", name)
    else:
        raise UserError(f"{contact!r} is not a mobile number, a @username or ME")
    if name.strip() and leader.id != key_contact.id:
        leader.name = name.strip()[:200]
    set_leader(session, team=team, leader=leader)
    pending = pending_of(session, key_contact)
    if pending is not None and pending.flow == "enrol" and pending.step.startswith("leader_"):
        clear_pending(session, key_contact)
    reached = False
    if team.state == TeamState.AWAITING_SIGNOFF.value:
        sent = request_signoff(session, team, leader_role=role, enabled=enabled, windows=windows)
        reached = sent is not None
    session.flush()
    return leader, reached


def _leader_at(session: Session, key_contact: Person, kind: str, value: str, name: str) -> Person:
    """Whoever holds the number or @username, else a new person reached there."""
    rows = sorted(key_contact.addresses, key=lambda r: r.id or 0, reverse=True)
    home = next(
        (r for r in rows if r.channel == key_contact.preferred_channel),
        rows[0] if rows else None,
    )
    on_phone = home is not None and (home.address or "").startswith("+")
    if kind == "phone":
        try:
            number = to_e164(value, get_settings().default_region)
        except BadPhoneNumber as exc:
            raise UserError(f"{value} is not a mobile number the bot can text") from exc
        existing = person_with_address(session, number)
        if existing is not None:
            return existing
        if home is None or not on_phone:
            raise UserError(
                "The key contact is not on a phone channel: give the leader's @username instead"
            )
        address, display = number, None
    else:
        if home is None or on_phone:
            raise UserError("A @username works for a key contact on an account channel only")
        existing = person_by_display(session, home.channel, value, only_unseen=False)
        if existing is not None:
            return existing
        address, display = None, value.lstrip("@")
    leader = Person(
        name=name.strip()[:200], language=key_contact.language, preferred_channel=home.channel
    )
    session.add(leader)
    add_address(session, leader, home.channel, address, display=display)
    session.flush()
    return leader
