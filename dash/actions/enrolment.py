"""Enrolling a unit: the key contact's priority matrix, then the leader's sign-off.

The same rules hold for chat and the web form: a matrix is five scores 1-5 (each revision
kept); the leader approves or declines a specific revision; approval enrols the team (state
`enrolled`, a join code for members) and only then does the scheduler compile its agenda;
a decline tells the key contact, who can revise the matrix (a new revision, a new request).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.actions.aims import set_initial_aim
from dash.actions.people import add_role, ask, clear_pending
from dash.actions.queueing import queue_to_person
from dash.context import AppContext
from dash.errors import UserError
from dash.links import link_url
from dash.models import (
    MATRIX_CRITERIA,
    Cohort,
    InstanceValue,
    Organisation,
    Person,
    PriorityMatrix,
    Role,
    SignOff,
    Team,
    TeamState,
    Unit,
)
from dash.queries.cohorts import unused_code
from dash.queries.enrolment import latest_matrix
from dash.queries.people import pending_of
from dash.settings import Settings, get_settings
from dash.texts import render
from dash.timeutil import utcnow


class UnitTaken(UserError):
    """The unit already has a team in this cohort, enrolled by someone else."""

    def __init__(self, team: Team) -> None:
        super().__init__(f"{team.name} is already enrolled in this cohort")
        self.team = team


def start_team(
    session: Session, *, cohort: Cohort, key_contact: Person, organisation: str, unit: str
) -> Team:
    """The team of `unit` at `organisation` in `cohort`, with `key_contact` as its key contact.

    Re-entering the same unit by the same key contact resumes that team; another person's
    unit raises UnitTaken (they should ask that key contact for the join code).
    """
    org_name, unit_name = organisation.strip()[:200], unit.strip()[:200]
    if not org_name or not unit_name:
        raise UserError("organisation and unit are both needed")
    org = session.execute(
        select(Organisation).where(func.lower(Organisation.name) == org_name.lower())
    ).scalar_one_or_none()
    if org is None:
        org = Organisation(name=org_name)
        session.add(org)
        session.flush()
    unit_row = session.execute(
        select(Unit).where(
            Unit.organisation_id == org.id, func.lower(Unit.name) == unit_name.lower()
        )
    ).scalar_one_or_none()
    if unit_row is None:
        unit_row = Unit(organisation_id=org.id, name=unit_name)
        session.add(unit_row)
        session.flush()
    team = session.execute(
        select(Team).where(Team.cohort_id == cohort.id, Team.unit_id == unit_row.id)
    ).scalar_one_or_none()
    if team is not None:
        if team.key_contact_id != key_contact.id:
            raise UnitTaken(team)
        return team
    team = Team(
        cohort_id=cohort.id,
        unit_id=unit_row.id,
        name=f"{unit_row.name}, {org.name}"[:300],
        state=TeamState.AWAITING_MATRIX.value,
        key_contact_id=key_contact.id,
    )
    session.add(team)
    session.flush()
    add_role(session, team, key_contact, Role.KEY_CONTACT.value)
    add_role(session, team, key_contact, Role.DATA_REPORTER.value)
    return team


def submit_matrix(
    session: Session, *, team: Team, scores: Mapping[str, int], by: Person | None, via: str
) -> PriorityMatrix:
    """Record a new revision of the team's priority matrix and ask the leader to sign it off
    (when the leader is known; otherwise once they are named)."""
    if team.state not in (
        TeamState.AWAITING_MATRIX.value,
        TeamState.AWAITING_SIGNOFF.value,
        TeamState.DECLINED.value,
    ):
        raise UserError(f"{team.name} is {team.state}; its matrix can no longer change")
    values: dict[str, int] = {}
    for criterion in MATRIX_CRITERIA:
        value = scores.get(criterion)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
            raise UserError(f"{criterion} needs a score from 1 to 5")
        values[criterion] = value
    previous = latest_matrix(session, team)
    matrix = PriorityMatrix(
        team_id=team.id,
        revision=(previous.revision + 1) if previous else 1,
        total=sum(values.values()),
        submitted_by_id=by.id if by else None,
        via=via,
        **values,
    )
    session.add(matrix)
    team.state = TeamState.AWAITING_SIGNOFF.value
    session.flush()
    if team.leader_id is not None:
        request_signoff(session, team)
    return matrix


def set_leader(session: Session, *, team: Team, leader: Person) -> None:
    """Name the person who signs the team off."""
    team.leader_id = leader.id


def signoff_url(ctx_or_settings: AppContext | Settings, secret: str, team: Team) -> str:
    """The leader's signed, expiring link to the web sign-off page for `team`."""
    settings = (
        ctx_or_settings.settings if isinstance(ctx_or_settings, AppContext) else ctx_or_settings
    )
    return link_url(settings.public_url, secret, "signoff", team.id)


def _secret(session: Session) -> str:
    """The deployment's secret key (configured, or the one generated on first run)."""
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key
    row = session.get(InstanceValue, "secret_key")
    if row is None:
        raise UserError("the secret key is not set up yet: run `dash init`")
    return row.value


def matrix_context(matrix: PriorityMatrix) -> dict[str, Any]:
    return {
        "scores": [(c, getattr(matrix, c)) for c in MATRIX_CRITERIA],
        "total": matrix.total,
        "revision": matrix.revision,
    }


def request_signoff(
    session: Session,
    team: Team,
    *,
    leader_role: str = "",
    enabled: Collection[str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> Person | None:
    """Send the leader the sign-off request (matrix, YES/NO, and the signed web link) on one
    of their addresses among the `enabled` channels (None: any).

    Returns the leader when the request could be queued; None when the leader cannot be
    reached by message yet (e.g. a Telegram @username who has not opened the bot, or a
    number whose channel takes no first message without an approved template and has no
    fallback: `windows`, see queue_to_person), in which case the key contact forwards the link.
    """
    leader = session.get(Person, team.leader_id) if team.leader_id else None
    matrix = latest_matrix(session, team)
    if leader is None or matrix is None:
        return None
    settings = get_settings()
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    previous = pending_of(session, leader)
    role = leader_role or (previous.data.get("leader_role", "") if previous else "")
    ask(
        session,
        leader,
        "signoff",
        "decision",
        team=team,
        data={"team_id": team.id, "matrix_id": matrix.id, "leader_role": role},
    )
    text = render(
        "signoff_request",
        leader.language,
        leader_name=leader.name,
        team_name=team.name,
        topic=team.cohort.topic,
        cohort_name=team.cohort.name,
        key_contact_name=contact.name if contact else "",
        link=signoff_url(settings, _secret(session), team),
        link_hours=settings.link_ttl_hours,
        **matrix_context(matrix),
    )
    buttons = [[{"text": "YES", "data": "signoff:yes"}, {"text": "NO", "data": "signoff:no"}]]
    payload: dict[str, Any] = {"buttons": buttons}
    sid = settings.signoff_template_sid
    if sid:
        payload["template"] = {
            "content_sid": sid,
            "variables": {
                "1": leader.name or "",
                "2": contact.name if contact else "",
                "3": team.name,
                "4": signoff_url(settings, _secret(session), team),
            },
        }
    sent = queue_to_person(
        session,
        leader,
        text,
        team=team,
        kind="signoff",
        payload=payload,
        enabled=enabled,
        windows=windows,
    )
    return leader if sent is not None else None


def record_signoff(
    session: Session,
    *,
    team: Team,
    decision: str,
    leader_name: str,
    leader_role: str,
    comment: str,
    via: str,
    leader: Person | None,
) -> SignOff:
    """The leader's decision on the latest matrix. Approval enrols the team and issues its
    join code; a decline lets the key contact revise. Either way the key contact is told."""
    if decision not in ("approved", "declined"):
        raise UserError("the decision is either approved or declined")
    if team.state != TeamState.AWAITING_SIGNOFF.value:
        raise UserError(f"{team.name} is not waiting for a sign-off (it is {team.state})")
    matrix = latest_matrix(session, team)
    if matrix is None:
        raise UserError(f"{team.name} has no priority matrix to sign off yet")
    signoff = SignOff(
        team_id=team.id,
        matrix_id=matrix.id,
        leader_id=leader.id if leader else None,
        leader_name=(leader_name or (leader.name if leader else "")).strip()[:200],
        leader_role=(leader_role or "").strip()[:200],
        decision=decision,
        comment=(comment or "").strip(),
        via=via,
        decided_at=utcnow(),
    )
    session.add(signoff)
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    if leader is not None:
        pending = pending_of(session, leader)
        if pending is not None and pending.flow == "signoff":
            clear_pending(session, leader)
    if decision == "approved":
        team.state = TeamState.ENROLLED.value
        team.enrolled_at = utcnow()
        team.join_code = team.join_code or unused_code(session)
        set_initial_aim(session, team, contact.language if contact else "en")
        if leader is not None:
            add_role(session, team, leader, Role.LEADER.value)
        if contact is not None:
            queue_to_person(
                session,
                contact,
                render(
                    "enrol_approved",
                    contact.language,
                    team_name=team.name,
                    leader_name=signoff.leader_name,
                    join_code=team.join_code,
                    comment=signoff.comment,
                ),
                team=team,
            )
    else:
        team.state = TeamState.DECLINED.value
        if contact is not None:
            queue_to_person(
                session,
                contact,
                render(
                    "enrol_declined",
                    contact.language,
                    team_name=team.name,
                    leader_name=signoff.leader_name,
                    comment=signoff.comment,
                ),
                team=team,
            )
    session.flush()
    return signoff


def reopen_matrix(session: Session, team: Team) -> None:
    """After a decline, the key contact scores the matrix again (a new revision follows)."""
    if team.state != TeamState.DECLINED.value:
        raise UserError(f"{team.name} is {team.state}; only a declined enrolment is revised")
    team.state = TeamState.AWAITING_MATRIX.value
