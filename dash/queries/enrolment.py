"""Enrolment as recorded: cohorts and teams by their codes, a team's latest priority matrix."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.codes import normalise_code
from dash.models import Cohort, Person, PriorityMatrix, SignOff, Team, TeamState

#: Where an unfinished enrolment stands, as HELP, refusals and the dashboard describe it.
STAGE_MATRIX = "matrix"  # the key contact has not finished the five scores
STAGE_LEADER = "leader"  # the scores are in; no leader named yet
STAGE_SIGNOFF = "signoff"  # waiting for the named leader's sign-off
STAGE_COACH = "coach"  # the key contact signed as leader; a coach confirms it
STAGE_DECLINED = "declined"  # the leader declined; the key contact may revise
STAGE_ENROLLED = "enrolled"

#: The states of a team whose enrolment is not finished.
UNFINISHED = (
    TeamState.AWAITING_MATRIX.value,
    TeamState.AWAITING_SIGNOFF.value,
    TeamState.DECLINED.value,
)


def cohort_by_code(session: Session, code: str) -> Cohort | None:
    return session.execute(
        select(Cohort).where(Cohort.enrolment_code == normalise_code(code))
    ).scalar_one_or_none()


def team_by_code(session: Session, code: str) -> Team | None:
    return session.execute(
        select(Team).where(Team.join_code == normalise_code(code))
    ).scalar_one_or_none()


def latest_matrix(session: Session, team: Team) -> PriorityMatrix | None:
    return session.execute(
        select(PriorityMatrix)
        .where(PriorityMatrix.team_id == team.id)
        .order_by(PriorityMatrix.revision.desc())
        .limit(1)
    ).scalar_one_or_none()


def self_signoffs(session: Session, team_ids: list[int] | None = None) -> dict[int, SignOff]:
    """Teams whose key contact approved their own enrolment (they named themselves leader)
    and that wait for a coach to confirm it: team id -> that approval. One query."""
    newest = (
        select(PriorityMatrix.team_id, func.max(PriorityMatrix.revision).label("revision"))
        .group_by(PriorityMatrix.team_id)
        .subquery()
    )
    query = (
        select(SignOff)
        .join(Team, Team.id == SignOff.team_id)
        .join(PriorityMatrix, PriorityMatrix.id == SignOff.matrix_id)
        .join(
            newest,
            (newest.c.team_id == PriorityMatrix.team_id)
            & (newest.c.revision == PriorityMatrix.revision),
        )
        .where(
            Team.state == TeamState.AWAITING_SIGNOFF.value,
            SignOff.decision == "approved",
            SignOff.leader_id == Team.key_contact_id,
        )
        .order_by(SignOff.decided_at)
    )
    if team_ids is not None:
        query = query.where(Team.id.in_(team_ids))
    return {signoff.team_id: signoff for signoff in session.execute(query).scalars()}
def enrolment_stage(team: Team) -> str:
    """Where `team`'s enrolment stands (one of the STAGE_ names): a team awaiting sign-off
    with nobody named to sign is still waiting for its key contact, not for a leader."""
    if team.state == TeamState.AWAITING_MATRIX.value:
        return STAGE_MATRIX
    if team.state == TeamState.AWAITING_SIGNOFF.value:
        return STAGE_SIGNOFF if team.leader_id is not None else STAGE_LEADER
    if team.state == TeamState.DECLINED.value:
        return STAGE_DECLINED
    return STAGE_ENROLLED


def unfinished_enrolment(
    session: Session, person: Person, cohort: Cohort | None = None
) -> Team | None:
    """The latest team `person` is enrolling as key contact (in `cohort`) not yet enrolled."""
    query = select(Team).where(Team.key_contact_id == person.id, Team.state.in_(UNFINISHED))
    if cohort is not None:
        query = query.where(Team.cohort_id == cohort.id)
    return session.execute(query.order_by(Team.id.desc()).limit(1)).scalar_one_or_none()
