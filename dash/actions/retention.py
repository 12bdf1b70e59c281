"""Retention: deleting a cohort's old conversation once its record is no longer needed.

What goes and what stays (docs/PRIVACY.md, "Retention"):

- Deleted: the messages of the cohort's teams created before the cut-off, in both
  directions, with the provider's raw payload (`messages.raw`) and media references
  they carry, and their outbox rows. Messages a cohort member sent before their team
  existed (enrolment chat, unattributed) go too, unless that person also belongs to a
  team of another cohort: then nobody can say whose record they are, and they stay.
- Kept: measure counts, PDSA cycles, aims, the priority matrix, the leader's sign-off,
  consent history and ratings. They are the team's improvement record, hold counts and
  plans rather than patient details by design, and what a coach or another team reads
  of their free text is masked (dash.privacy). A measure value only loses the link to
  the message it came from.
- Untouched: anything still in flight (an outbound message queued or being sent, an
  inbound one not yet processed), so a purge never changes what gets delivered.

People are not deleted here: a person may belong to several cohorts, and their STOP
(opt-out) must outlive any purge so the system keeps honouring it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import (
    Cohort,
    MeasureValue,
    Membership,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxState,
    Team,
)
from dash.timeutil import local_to_utc

log = logging.getLogger(__name__)

_IN_FLIGHT = (OutboxState.QUEUED.value, OutboxState.SENDING.value)


@dataclass(frozen=True)
class PurgeReport:
    """What a purge deleted (or, for a dry run, would delete)."""

    cohort_id: int
    cohort_name: str
    before: date
    cutoff: datetime  # midnight at the start of `before` in the cohort's time zone, as UTC
    teams: int
    messages_in: int
    messages_out: int
    raw_payloads: int  # inbound messages whose provider payload goes with them
    outbox_rows: int
    measure_links: int  # measure values that keep their counts but lose the message link
    kept_in_flight: int
    dry_run: bool

    @property
    def messages(self) -> int:
        return self.messages_in + self.messages_out


def _people_of(team_ids: Select[tuple[int]]) -> CompoundSelect:
    """People tied to these teams: members, key contacts, leaders."""
    return union(
        select(Membership.person_id).where(Membership.team_id.in_(team_ids)),
        select(Team.key_contact_id).where(Team.id.in_(team_ids), Team.key_contact_id.is_not(None)),
        select(Team.leader_id).where(Team.id.in_(team_ids), Team.leader_id.is_not(None)),
    )


def _ours(cohort_id: int, cutoff: datetime) -> ColumnElement[bool]:
    """The cohort's messages older than `cutoff`: its teams' threads, and what its people
    sent before a team was known, unless they also belong to another cohort's team."""
    team_ids = select(Team.id).where(Team.cohort_id == cohort_id)
    other_team_ids = select(Team.id).where(Team.cohort_id != cohort_id)
    return and_(
        or_(
            Message.team_id.in_(team_ids),
            and_(
                Message.team_id.is_(None),
                Message.person_id.in_(_people_of(team_ids)),
                Message.person_id.not_in(_people_of(other_team_ids)),
            ),
        ),
        Message.created_at < cutoff,
    )


def _not_in_flight() -> ColumnElement[bool]:
    sending = exists().where(OutboxItem.message_id == Message.id, OutboxItem.state.in_(_IN_FLIGHT))
    return and_(Message.status != MessageStatus.RECEIVED.value, ~sending)


def _count(session: Session, *where: ColumnElement[bool]) -> int:
    return session.execute(select(func.count(Message.id)).where(*where)).scalar_one()


def purge(session: Session, *, cohort_id: int, before: date, dry_run: bool = False) -> PurgeReport:
    """Delete the cohort's messages older than `before` (see the module docstring).

    `before` is a calendar day in the cohort's time zone: everything created before
    that day began there goes. With `dry_run` nothing changes; the report says what
    would go. Raises UserError for an unknown cohort. Does not commit.
    """
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise UserError(f"there is no cohort {cohort_id}")
    cutoff = local_to_utc(before, time(0, 0), cohort.timezone)
    older = _ours(cohort_id, cutoff)
    purgeable = and_(older, _not_in_flight())
    ids = select(Message.id).where(purgeable)
    report = PurgeReport(
        cohort_id=cohort.id,
        cohort_name=cohort.name,
        before=before,
        cutoff=cutoff,
        teams=session.execute(
            select(func.count(Team.id)).where(Team.cohort_id == cohort_id)
        ).scalar_one(),
        messages_in=_count(session, purgeable, Message.direction == "in"),
        messages_out=_count(session, purgeable, Message.direction == "out"),
        raw_payloads=_count(
            session, purgeable, Message.direction == "in", Message.raw.is_not(None)
        ),
        outbox_rows=session.execute(
            select(func.count(OutboxItem.id)).where(OutboxItem.message_id.in_(ids))
        ).scalar_one(),
        measure_links=session.execute(
            select(func.count(MeasureValue.id)).where(MeasureValue.message_id.in_(ids))
        ).scalar_one(),
        kept_in_flight=_count(session, older, ~_not_in_flight()),
        dry_run=dry_run,
    )
    if dry_run:
        return report
    # Ids first: the statements below change what the condition would select.
    doomed = list(session.execute(ids).scalars())
    for chunk in _chunks(doomed, 500):
        session.execute(
            update(MeasureValue)
            .where(MeasureValue.message_id.in_(chunk))
            .values(message_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(OutboxItem)
            .where(OutboxItem.message_id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(Message)
            .where(Message.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    session.expire_all()
    log.info(
        "purged %d messages of cohort %d before %s",
        report.messages,
        cohort_id,
        before.isoformat(),
        extra={"event": "purge"},
    )
    return report


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
