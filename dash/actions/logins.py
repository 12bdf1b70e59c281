"""Dashboard log-ins: password checks with lock-out, a throttle per client address and
network, one-time log-in links, and ending every session of a coach at once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dash.links import LinkClaim, mark_used
from dash.models import LoginThrottle, Person
from dash.passwords import verify_password
from dash.settings import Settings

#: Expired throttle rows one attempt clears away, so the table stays the size of current abuse.
_PURGE_BATCH = 100


@dataclass(frozen=True)
class LoginPolicy:
    """How many failures an account, a client address and its network may have."""

    max_failures: int
    lockout: timedelta
    address_max_failures: int
    network_max_failures: int
    throttle_window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            address_max_failures=settings.login_address_max_failures,
            network_max_failures=settings.login_network_max_failures,
            throttle_window=timedelta(minutes=settings.login_throttle_minutes),
        )


@dataclass(frozen=True)
class LoginOutcome:
    """`person` is set only on success.

    `reason` is "ok", "bad" (no such account or a wrong password), "locked" (the account is
    locked; only for the server's eyes: the page answers it like "bad") or "throttled" (this
    client address or network failed too often, whatever the account; `retry_at` says when
    it may try again).
    """

    person: Person | None
    reason: str
    retry_at: datetime | None = None


def client_keys(host: str | None, policy: LoginPolicy) -> list[tuple[str, int]]:
    """The throttle keys of a client with their limits: its address and its network
    (/24 for IPv4, /64 for IPv6: what one subscriber or small office usually holds)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return [(f"host {host or 'unknown'}"[:64], policy.address_max_failures)]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return [
        (f"ip {address}", policy.address_max_failures),
        (f"net {network}", policy.network_max_failures),
    ]


def _throttle_row(session: Session, key: str, now: datetime, window: timedelta) -> LoginThrottle:
    """The row counting `key`'s failures, locked until the transaction ends; a new window
    starts once the old one is over."""
    query = select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                row = LoginThrottle(key=key, failures=0, window_start=now)
                session.add(row)
        except IntegrityError:  # another process created it first: use theirs
            row = session.execute(query.execution_options(populate_existing=True)).scalar_one()
    if row.window_start + window <= now:
        row.failures = 0
        row.window_start = now
    return row


def _forget_old_tries(session: Session, now: datetime, window: timedelta) -> None:
    """Delete a batch of rows whose window is over (skipping any another log-in holds)."""
    stale = (
        select(LoginThrottle.key)
        .where(LoginThrottle.window_start <= now - window)
        .limit(_PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    keys = list(session.execute(stale).scalars())
    if keys:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))


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
    client: str | None,
    now: datetime,
    policy: LoginPolicy,
) -> LoginOutcome:
    """Check a coach's or admin's password, counting failures per account and per client.

    After `policy.max_failures` failures in a row the account is locked for `policy.lockout`
    (and its sessions end); while locked even the right password is refused, so guessing
    cannot go on. A client address or network with too many failures in the window, over
    any accounts, is refused before any account is looked at, so one client cannot lock
    every coach out.
    """
    _forget_old_tries(session, now, policy.throttle_window)
    # Keys in sorted order, then the person's row: every log-in takes its locks in the same
    # order, so two of them never wait on each other.
    throttles = [
        (_throttle_row(session, key, now, policy.throttle_window), limit)
        for key, limit in sorted(client_keys(client, policy))
    ]
    full = [row for row, limit in throttles if row.failures >= limit]
    if full:
        retry_at = max(row.window_start for row in full) + policy.throttle_window
        return LoginOutcome(None, "throttled", retry_at)
    # Counted as a failure before the password is checked (and given back on success), so
    # tries in parallel cannot overshoot the limit while each waits for its hash.
    for row, _limit in throttles:
        row.failures += 1
    outcome = _check_password(session, email=email, password=password, now=now, policy=policy)
    if outcome.person is not None:
        for row, _limit in throttles:
            row.failures -= 1
    return outcome


def _check_password(
    session: Session, *, email: str, password: str, now: datetime, policy: LoginPolicy
) -> LoginOutcome:
    """One Argon2 verification on every path (a dummy hash when there is no account or it is
    locked), so the time an answer takes cannot tell which e-mails have accounts."""
    # The row is locked until the transaction ends: parallel guesses queue up and each sees
    # the failures before it (unlocked, twenty at once all read "0 failures" on PostgreSQL).
    person = _staff_by_email(session, email, lock=True)
    if person is None:
        verify_password(None, password)
        return LoginOutcome(None, "bad")
    if person.locked_until is not None and person.locked_until > now:
        verify_password(None, password)
        return LoginOutcome(None, "locked")
    if verify_password(person.password_hash, password):
        person.failed_logins = 0
        person.locked_until = None
        return LoginOutcome(person, "ok")
    person.failed_logins += 1
    if person.failed_logins >= policy.max_failures:
        person.failed_logins = 0
        person.locked_until = now + policy.lockout
        end_sessions(session, person)  # someone may be guessing because they hold a session
        return LoginOutcome(None, "locked")
    return LoginOutcome(None, "bad")


def end_sessions(session: Session, person: Person) -> None:
    """End every dashboard session of `person` at once (log-out, password change, lock-out,
    removal): each session carries the generation it began in, and it no longer matches."""
    person.session_generation = Person.session_generation + 1
    session.flush()


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
