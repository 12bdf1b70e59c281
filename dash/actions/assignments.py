"""Which coaches look after which cohorts (cohort_coaches)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import Cohort, Person


def assign_coach(session: Session, *, cohort: Cohort, coach: Person) -> None:
    """Give `coach` the cohort: its teams then appear on their Today page and board."""
    if not (coach.is_coach or coach.is_admin):
        raise UserError(f"{coach.name or coach.email} is not a coach")
    if coach not in cohort.coaches:
        cohort.coaches.append(coach)
    session.flush()


def unassign_coach(session: Session, *, cohort: Cohort, coach: Person) -> None:
    """Take the cohort away from `coach`; their replies stay in the threads."""
    if coach in cohort.coaches:
        cohort.coaches.remove(coach)
    session.flush()
