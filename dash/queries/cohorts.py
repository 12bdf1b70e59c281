"""Cohorts as recorded: a join code nobody uses yet."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.codes import new_code
from dash.models import Cohort, Team


def unused_code(session: Session) -> str:
    """A code that is neither a cohort's enrolment code nor a team's join code."""
    while True:
        code = new_code()
        taken = (
            session.execute(select(Cohort.id).where(Cohort.enrolment_code == code)).first()
            or session.execute(select(Team.id).where(Team.join_code == code)).first()
        )
        if not taken:
            return code
