"""Dashboard log-ins: password checks with lock-out, and one-time log-in links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dash.links import LinkClaim, mark_used
from dash.models import Person
from dash.passwords import verify_password


@dataclass(frozen=True)
class LoginOutcome:
    """`person` is set only on success; `locked_until` says when a locked account opens."""

    person: Person | None
    reason: str  # "ok", "bad", "locked"
    locked_until: datetime | None = None


def _staff_by_email(session: Session, email: str, *, lock: bool = False) -> Person | None:
    query = select(Person).where(func.lower(Person.email) == email.strip().lower())
    if lock:
        query = query.with_for_update()
    person = session.execute(query).scalar_one_or_none()
    if person is None or not (person.is_coach or person.is_admin):
        return None
    return person


def password_login(
    session: Session,
    *,
    email: str,
    password: str,
    now: datetime,
    max_failures: int,
    lockout_minutes: int,
) -> LoginOutcome:
    """Check a coach's or admin's password, counting failures.

    After `max_failures` failures in a row the account is locked for `lockout_minutes`;
    while locked even the right password is refused, so guessing cannot go on.
    """
    # The row is locked until the transaction ends: parallel guesses queue up and each sees
    # the failures before it (unlocked, twenty at once all read "0 failures" on PostgreSQL).
    person = _staff_by_email(session, email, lock=True)
    if person is None:
        verify_password(None, password)  # same time as a real check
        return LoginOutcome(None, "bad")
    if person.locked_until is not None and person.locked_until > now:
        return LoginOutcome(None, "locked", person.locked_until)
    if verify_password(person.password_hash, password):
        person.failed_logins = 0
        person.locked_until = None
        return LoginOutcome(person, "ok")
    person.failed_logins += 1
    if person.failed_logins >= max_failures:
        person.failed_logins = 0
        person.locked_until = now + timedelta(minutes=lockout_minutes)
        return LoginOutcome(None, "locked", person.locked_until)
    return LoginOutcome(None, "bad")


def link_login(session: Session, claim: LinkClaim) -> Person | None:
    """Use a one-time log-in link (already verified and unexpired): marks it used.

    Raises dash.links.BadLink('used') on a second use. The link proves access to
    the mailbox it was sent to, so it also clears a password lock-out.
    """
    person = session.get(Person, claim.subject)
    if person is None or not (person.is_coach or person.is_admin):
        return None
    mark_used(session, claim)
    person.failed_logins = 0
    person.locked_until = None
    return person
