"""PDSA cycles (IHI QI Essentials PDSA worksheet fields)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from dash.models.base import Base, BigId
from dash.timeutil import utcnow


class PdsaState(StrEnum):
    PLANNING = "planning"  # the plan conversation is under way
    PLANNED = "planned"  # plan complete, test not yet reported
    DONE = "done"  # Do recorded
    STUDIED = "studied"  # Study recorded
    ACTED = "acted"  # Act decided: cycle closed


#: Planned cycles whose follow-up row the scheduler has not compiled for their test date
#: (partial index ix_pdsa_cycles_followup_due: an idle tick finds none by index).
PDSA_FOLLOWUP_DUE = (
    "state = 'planned' AND test_date IS NOT NULL "
    "AND (followup_for IS NULL OR followup_for <> test_date)"
)


class PdsaCycle(Base):
    __tablename__ = "pdsa_cycles"
    __table_args__ = (
        UniqueConstraint("team_id", "number"),
        CheckConstraint(
            "state IN ('planning', 'planned', 'done', 'studied', 'acted')", name="state"
        ),
        CheckConstraint("act IS NULL OR act IN ('adopt', 'adapt', 'abandon')", name="act"),
        Index("ix_pdsa_cycles_team_state", "team_id", "state"),
        Index(
            "ix_pdsa_cycles_followup_due",
            "team_id",
            postgresql_where=text(PDSA_FOLLOWUP_DUE),
            sqlite_where=text(PDSA_FOLLOWUP_DUE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(12), default=PdsaState.PLANNING.value)
    change_key: Mapped[str | None] = mapped_column(String(64))
    change_text: Mapped[str] = mapped_column(Text, default="")
    prediction: Mapped[str] = mapped_column(Text, default="")
    plan_who_where_when: Mapped[str] = mapped_column(Text, default="")
    plan_measure: Mapped[str] = mapped_column(Text, default="")
    test_date: Mapped[date | None]
    followup_for: Mapped[date | None] = mapped_column(
        doc="The test date the scheduler compiled this cycle's follow-up row for."
    )
    do_notes: Mapped[str] = mapped_column(Text, default="")
    study_notes: Mapped[str] = mapped_column(Text, default="")
    act: Mapped[str | None] = mapped_column(String(8))
    act_notes: Mapped[str] = mapped_column(Text, default="")
    story: Mapped[str | None] = mapped_column(Text)
    story_shared_at: Mapped[datetime | None]
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("pdsa_cycles.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    reviewed_at: Mapped[datetime | None]
