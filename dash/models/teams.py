"""Teams (a unit's enrolment in a cohort), their members and what they agree to."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dash.models.base import Base, BigId
from dash.models.cohorts import Cohort
from dash.models.people import Person, Unit
from dash.timeutil import utcnow


class TeamState(StrEnum):
    """Enrolment states: matrix, then leader sign-off, then enrolled (agenda compiled)."""

    AWAITING_MATRIX = "awaiting_matrix"
    AWAITING_SIGNOFF = "awaiting_signoff"
    ENROLLED = "enrolled"
    COMPLETED = "completed"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class Role(StrEnum):
    MEMBER = "member"
    DATA_REPORTER = "data_reporter"
    KEY_CONTACT = "key_contact"
    LEADER = "leader"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


#: Teams whose agenda the scheduler has to (re)compile or cancel whatever their cohort does:
#: enrolled and never compiled, or left with a compiled agenda (partial index ix_teams_agenda_due).
TEAM_AGENDA_DUE = (
    "(state = 'enrolled' AND agenda_version IS NULL) "
    "OR (state <> 'enrolled' AND agenda_version IS NOT NULL)"
)


class Team(Base):
    """One unit taking part in one cohort; its row is also its enrolment."""

    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("cohort_id", "unit_id"),
        UniqueConstraint("group_channel", "group_address"),
        CheckConstraint(_in("state", TeamState), name="state"),
        Index("ix_teams_cohort_state", "cohort_id", "state"),
        Index(
            "ix_teams_agenda_due",
            "cohort_id",
            postgresql_where=text(TEAM_AGENDA_DUE),
            sqlite_where=text(TEAM_AGENDA_DUE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    name: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20), default=TeamState.AWAITING_MATRIX.value)
    join_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    key_contact_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    consent_share: Mapped[bool] = mapped_column(default=False)
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    # The team's group chat (e.g. a Telegram group), reached once for all its members.
    group_channel: Mapped[str | None] = mapped_column(String(16))
    group_address: Mapped[str | None] = mapped_column(String(254))
    needs_coach_since: Mapped[datetime | None]
    agenda_version: Mapped[int | None] = mapped_column(
        doc="The cohort schedule version the team's agenda was compiled for; None = not yet, "
        "or the team left and its pending rows were cancelled."
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enrolled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    cohort: Mapped[Cohort] = relationship()
    unit: Mapped[Unit] = relationship()
    key_contact: Mapped[Person | None] = relationship(foreign_keys=[key_contact_id])
    leader: Mapped[Person | None] = relationship(foreign_keys=[leader_id])
    memberships: Mapped[list[Membership]] = relationship(back_populates="team")


class Membership(Base):
    """A person's role in a team; one person may hold several roles and teams."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("team_id", "person_id", "role"),
        CheckConstraint(_in("role", Role), name="role"),
        Index("ix_memberships_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20), default=Role.MEMBER.value)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship(back_populates="memberships")
    person: Mapped[Person] = relationship()


MATRIX_CRITERIA = ("importance", "influence", "project_length", "expense", "frequency")


class PriorityMatrix(Base):
    """The key contact's scoring of the topic (QI-REFERENCE.md, priority matrix).

    Each revision is kept; the leader signs off a specific one.
    """

    __tablename__ = "priority_matrices"
    __table_args__ = (
        UniqueConstraint("team_id", "revision"),
        *(CheckConstraint(f"{c} BETWEEN 1 AND 5", name=c) for c in MATRIX_CRITERIA),
        CheckConstraint(
            "total = importance + influence + project_length + expense + frequency", name="total"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(default=1)
    importance: Mapped[int]
    influence: Mapped[int]
    project_length: Mapped[int]
    expense: Mapped[int]
    frequency: Mapped[int]
    total: Mapped[int]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    via: Mapped[str] = mapped_column(String(16), default="console")


class SignOff(Base):
    """A leader's decision on a team's enrolment, kept as evidence (who, role, when, how)."""

    __tablename__ = "signoffs"
    __table_args__ = (
        CheckConstraint("decision IN ('approved', 'declined')", name="decision"),
        Index("ix_signoffs_team", "team_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    matrix_id: Mapped[int] = mapped_column(ForeignKey("priority_matrices.id"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    leader_name: Mapped[str] = mapped_column(String(200))
    leader_role: Mapped[str] = mapped_column(String(200), default="")
    decision: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text, default="")
    via: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class Aim(Base):
    """What the team is trying to accomplish: how much, by when, for whom."""

    __tablename__ = "aims"
    __table_args__ = (
        CheckConstraint("goal >= 0 AND goal <= 1", name="goal"),
        Index("ix_aims_team", "team_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    measure_id: Mapped[int] = mapped_column(ForeignKey("measures.id"))
    text: Mapped[str] = mapped_column(Text)
    goal: Mapped[float]
    baseline: Mapped[float | None]
    target_date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentChange(Base):
    """History of a team's choice to share its data and stories with the cohort."""

    __tablename__ = "consent_changes"
    __table_args__ = (Index("ix_consent_changes_team", "team_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    shared: Mapped[bool]
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    via: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssessmentRating(Base):
    """IHI assessment scale 0.5-5.0 in half points, rated by faculty; rows are the history."""

    __tablename__ = "assessment_ratings"
    __table_args__ = (
        CheckConstraint("half_points BETWEEN 1 AND 10", name="half_points"),
        Index("ix_assessment_ratings_team", "team_id", "rated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    half_points: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    rated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def score(self) -> float:
        return self.half_points / 2
