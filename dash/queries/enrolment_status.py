"""Where a team's enrolment stands, as a coach repairing it needs to see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.models import MATRIX_CRITERIA, Message, Person, Team
from dash.queries.enrolment import UNFINISHED
from dash.queries.people import pending_of


@dataclass(frozen=True)
class EnrolmentStatus:
    """The open question to the key contact, the leader named or not, the sign-off request."""

    state: str
    key_contact: Person | None
    #: The step the key contact is asked ("score:influence", "leader_name", ...), or "".
    step: str
    asked_at: datetime | None
    misses: int
    leader: Person | None
    #: When the leader was last sent the sign-off request, and whether it failed.
    signoff_sent_at: datetime | None
    signoff_status: str

    @property
    def unfinished(self) -> bool:
        return self.state in UNFINISHED

    @property
    def criterion(self) -> tuple[int, str] | None:
        """(number, criterion) of the matrix question asked, if that is the open question."""
        if not self.step.startswith("score:"):
            return None
        name = self.step.split(":", 1)[1]
        return (MATRIX_CRITERIA.index(name) + 1, name) if name in MATRIX_CRITERIA else None


def enrolment_status(session: Session, team: Team) -> EnrolmentStatus:
    contact = session.get(Person, team.key_contact_id) if team.key_contact_id else None
    leader = session.get(Person, team.leader_id) if team.leader_id else None
    pending = pending_of(session, contact) if contact is not None else None
    asked = pending is not None and pending.flow == "enrol" and pending.team_id == team.id
    request = session.execute(
        select(Message)
        .where(
            Message.team_id == team.id,
            Message.kind == "signoff",
            Message.direction == "out",
            Message.person_id == team.leader_id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return EnrolmentStatus(
        state=team.state,
        key_contact=contact,
        step=pending.step if asked and pending is not None else "",
        asked_at=pending.asked_at if asked and pending is not None else None,
        misses=pending.failures if asked and pending is not None else 0,
        leader=leader,
        signoff_sent_at=request.created_at if request is not None and leader else None,
        signoff_status=request.status if request is not None and leader else "",
    )
