"""Enrolment as recorded: cohorts and teams by their codes, a team's latest priority matrix."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.codes import normalise_code
from dash.models import Cohort, PriorityMatrix, Team


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
