"""Cohorts (one topic, one curriculum version, one start date) and their coaches."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dash.models.base import Base, BigId
from dash.models.people import Person
from dash.timeutil import utcnow

#: Cohorts the scheduler has to compile (partial index: an idle tick finds none by index).
COHORT_SYNC_DUE = "synced_version IS NULL OR synced_version <> sync_version"

cohort_coaches = Table(
    "cohort_coaches",
    Base.metadata,
    Column("cohort_id", ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
)


class Cohort(Base):
    """Teams running the same topic's Dash from the same start date."""

    __tablename__ = "cohorts"
    __table_args__ = (
        CheckConstraint("schedule_version >= 1", name="schedule_version"),
        CheckConstraint("session_minutes BETWEEN 10 AND 180", name="session_minutes"),
        Index(
            "ix_cohorts_sync_due",
            "id",
            postgresql_where=text(COHORT_SYNC_DUE),
            sqlite_where=text(COHORT_SYNC_DUE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(40))
    curriculum_version: Mapped[int]
    start_date: Mapped[date]
    timezone: Mapped[str] = mapped_column(String(64))
    session_weekdays: Mapped[str] = mapped_column(String(20), default="0,2,4")
    session_time: Mapped[time] = mapped_column(default=time(12, 30))
    session_minutes: Mapped[int] = mapped_column(default=45)
    join_link: Mapped[str | None] = mapped_column(String(500))
    enrolment_code: Mapped[str] = mapped_column(String(32), unique=True)
    schedule_version: Mapped[int] = mapped_column(default=1)
    sync_version: Mapped[int] = mapped_column(
        default=1,
        doc="Bumped (by the events below) by every change the scheduler compiles the cohort's "
        "rows from: its schedule (with schedule_version) and its coaches.",
    )
    synced_version: Mapped[int | None] = mapped_column(
        doc="The sync_version the scheduler last compiled the cohort for; None = never."
    )
    session_overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    coaches: Mapped[list[Person]] = relationship(secondary=cohort_coaches)
    measures: Mapped[list[Measure]] = relationship(
        back_populates="cohort", order_by="Measure.position"
    )

    @property
    def weekdays(self) -> list[int]:
        return [int(d) for d in self.session_weekdays.split(",") if d != ""]


def _bump_sync_version(target: Cohort, *_: Any) -> None:
    """Any edit of the coaches or the schedule, by whatever path, re-syncs the cohort."""
    target.sync_version = (target.sync_version or 1) + 1


event.listen(Cohort.coaches, "append", _bump_sync_version)
event.listen(Cohort.coaches, "remove", _bump_sync_version)
event.listen(Cohort.schedule_version, "set", _bump_sync_version)


class Measure(Base):
    """A measure of the cohort's curriculum, copied at creation so data outlive edits."""

    __tablename__ = "measures"
    __table_args__ = (
        UniqueConstraint("cohort_id", "key"),
        CheckConstraint("better IN ('higher', 'lower')", name="better"),
        CheckConstraint("goal IS NULL OR (goal >= 0 AND goal <= 1)", name="goal"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    better: Mapped[str] = mapped_column(String(8))
    goal: Mapped[float | None]
    primary: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)

    cohort: Mapped[Cohort] = relationship(back_populates="measures")
