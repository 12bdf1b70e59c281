"""Who sees what: a coach sees the cohorts assigned to them, an admin sees all.

Anything outside that answers 404, the same as something that does not exist,
so a coach cannot even learn which other cohorts or teams there are.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from dash.models import Cohort, Person, Team, cohort_coaches


def visible_cohorts(db: Session, user: Person) -> list[Cohort]:
    query = select(Cohort).order_by(Cohort.start_date.desc(), Cohort.id.desc())
    return list(db.execute(limit_cohorts(query, user, Cohort.id)).scalars())


def limit_cohorts(query: Select, user: Person, cohort_column: object) -> Select:
    """`query` restricted to rows whose `cohort_column` is one of the user's cohorts."""
    if user.is_admin:
        return query
    mine = select(cohort_coaches.c.cohort_id).where(cohort_coaches.c.person_id == user.id)
    return query.where(cohort_column.in_(mine))  # type: ignore[attr-defined]


def may_see_cohort(db: Session, user: Person, cohort_id: int) -> bool:
    if user.is_admin:
        return True
    row = db.execute(
        select(cohort_coaches.c.cohort_id).where(
            cohort_coaches.c.cohort_id == cohort_id, cohort_coaches.c.person_id == user.id
        )
    ).first()
    return row is not None


def cohort_for(db: Session, user: Person, cohort_id: int) -> Cohort:
    cohort = db.get(Cohort, cohort_id)
    if cohort is None or not may_see_cohort(db, user, cohort.id):
        raise HTTPException(404)
    return cohort


def team_for(db: Session, user: Person, team_id: int) -> Team:
    team = db.get(Team, team_id)
    if team is None or not may_see_cohort(db, user, team.cohort_id):
        raise HTTPException(404)
    return team
