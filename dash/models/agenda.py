"""Agenda rows: every timed step of a team's Dash, compiled from the curriculum."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from dash.models.base import Base, BigId
from dash.timeutil import utcnow


class AgendaState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class AgendaItem(Base):
    """One step due at one instant for one team (or one coach, for digests).

    Unique on (team, step key) so compiling twice cannot duplicate; `version`
    is the cohort's schedule version when written, so edits can invalidate it.
    """

    __tablename__ = "agenda"
    __table_args__ = (
        UniqueConstraint("team_id", "step_key"),
        CheckConstraint(
            "state IN ('pending', 'claimed', 'done', 'skipped', 'cancelled')", name="state"
        ),
        Index("ix_agenda_due", "state", "due_at"),
        # The tick's claim walks pending rows in (due_at, id) order and stops at its batch:
        # thousands of prompts share one due_at, so without id in the index every claim read
        # and sorted all of them (10,000 prompts: 100 claims of the whole backlog).
        Index(
            "ix_agenda_pending_order",
            "due_at",
            "id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_agenda_cohort", "cohort_id"),
        # Every tick syncs each live cohort's digest rows (team_id NULL): without this the
        # lookup walked all cohorts' team-less rows, 5 million rows a tick at 10,000 teams.
        Index(
            "ix_agenda_cohort_wide",
            "cohort_id",
            "kind",
            sqlite_where=text("team_id IS NULL"),
            postgresql_where=text("team_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    coach_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    local_day: Mapped[date]
    grace_minutes: Mapped[int] = mapped_column(default=120)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(12), default=AgendaState.PENDING.value)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
