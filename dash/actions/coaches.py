"""Coach and admin accounts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import Cohort, Person
from dash.passwords import MIN_LENGTH, hash_password


def add_coach(
    session: Session,
    *,
    email: str,
    name: str,
    password: str | None = None,
    cohort_id: int | None = None,
    admin: bool = False,
) -> Person:
    """Create (or update) a coach; assign them to a cohort when given."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise UserError(f"{email!r} is not an e-mail address")
    if password is not None and len(password) < MIN_LENGTH:
        raise UserError(f"the password must be at least {MIN_LENGTH} characters")
    person = session.execute(
        select(Person).where(func.lower(Person.email) == email)
    ).scalar_one_or_none()
    if person is None:
        person = Person(email=email, name=name.strip())
        session.add(person)
    else:
        person.name = name.strip() or person.name
    person.is_coach = True
    person.is_admin = person.is_admin or admin
    if password is not None:
        person.password_hash = hash_password(password)
    if cohort_id is not None:
        cohort = session.get(Cohort, cohort_id)
        if cohort is None:
            raise UserError(f"there is no cohort {cohort_id}")
        if person not in cohort.coaches:
            cohort.coaches.append(person)
    session.flush()
    return person
