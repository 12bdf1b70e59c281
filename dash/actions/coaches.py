"""Coach and admin accounts."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.actions.assignments import unassign_coach
from dash.actions.logins import end_sessions
from dash.actions.people import add_address
from dash.actions.queueing import queue_to_person
from dash.errors import UserError
from dash.models import Address, Cohort, Person, cohort_coaches
from dash.passwords import MIN_LENGTH, hash_password
from dash.reach import EMAIL
from dash.texts import render


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
        if person.id is not None:
            end_sessions(session, person)  # whoever knew the old password is logged out
        person.password_hash = hash_password(password)
    _email_address(session, person, email)
    if cohort_id is not None:
        cohort = session.get(Cohort, cohort_id)
        if cohort is None:
            raise UserError(f"there is no cohort {cohort_id}")
        if person not in cohort.coaches:
            cohort.coaches.append(person)
    session.flush()
    return person


def _email_address(session: Session, person: Person, email: str) -> None:
    """The account's e-mail is also where messages to the coach can go (digests, log-in
    links), on whichever channel sends e-mail when the deployment enables one."""
    held = session.execute(
        select(Address).where(Address.channel == EMAIL, Address.address == email)
    ).scalar_one_or_none()
    if held is None:
        if person.id is None:
            session.flush()
        add_address(session, person, EMAIL, email)


def send_login_link(
    session: Session,
    person: Person,
    link: str,
    *,
    hours: int,
    enabled: Collection[str] | None = None,
) -> str | None:
    """Queue a one-time log-in link to the coach on one of their addresses among the
    `enabled` channels (None: any); the channel it went to, or None when none reaches them."""
    text = render(
        "login_link", person.language, coach_name=person.name, link=link, link_hours=hours
    )
    message = queue_to_person(session, person, text, enabled=enabled, kind="login_link")
    return message.channel if message is not None else None


def remove_coach(session: Session, *, email: str) -> Person:
    """Take a coach's or admin's dashboard access away: their cohorts, password and every open
    session end at once. The person stays, so their replies remain in the teams' threads."""
    person = session.execute(
        select(Person).where(func.lower(Person.email) == email.strip().lower())
    ).scalar_one_or_none()
    if person is None or not (person.is_coach or person.is_admin):
        raise UserError(f"there is no coach or admin with the e-mail {email.strip()!r}")
    cohorts = session.execute(
        select(Cohort).join(cohort_coaches).where(cohort_coaches.c.person_id == person.id)
    ).scalars()
    for cohort in list(cohorts):
        unassign_coach(session, cohort=cohort, coach=person)  # re-syncs each cohort's digests
    person.is_coach = False
    person.is_admin = False
    person.password_hash = None
    person.failed_logins = 0
    person.locked_until = None
    end_sessions(session, person)
    return person
