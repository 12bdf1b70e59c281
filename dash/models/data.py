"""Daily measure data: counts only, one current value per team, measure and day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dash.models.base import Base, BigId
from dash.models.cohorts import Measure
from dash.timeutil import utcnow


class MeasureValue(Base):
    """One reported numerator/denominator for a day (0/0 = no eligible patients that day).

    A correction does not update in place: the old row gets `is_current = false`
    and `replaced_at`, the new one is current. The partial unique index makes a
    second current value for the same team, measure and day impossible.
    """

    __tablename__ = "measure_values"
    __table_args__ = (
        CheckConstraint("numerator >= 0", name="numerator"),
        CheckConstraint("denominator >= 0", name="denominator"),
        CheckConstraint("numerator <= denominator", name="fraction"),
        Index(
            "uq_measure_values_current",
            "team_id",
            "measure_id",
            "day",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
        Index("ix_measure_values_team_day", "team_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    measure_id: Mapped[int] = mapped_column(ForeignKey("measures.id"))
    day: Mapped[date]
    numerator: Mapped[int]
    denominator: Mapped[int]
    is_current: Mapped[bool] = mapped_column(default=True)
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    replaced_at: Mapped[datetime | None]

    measure: Mapped[Measure] = relationship()

    @property
    def value(self) -> float | None:
        """The proportion; None for 0/0, a day with no eligible patients (reported, not plotted)."""
        return self.numerator / self.denominator if self.denominator else None
