"""Instance-wide records: the generated secret, used one-time links, coach snippets, and the
failed log-ins counted per client address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dash.models.base import Base, BigId
from dash.timeutil import utcnow


class InstanceValue(Base):
    """Key/value facts of this deployment (the generated secret key), shared by all processes."""

    __tablename__ = "instance_values"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsedLink(Base):
    """Single-purpose signed links, recorded once used so they cannot be replayed."""

    __tablename__ = "used_links"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Failed log-ins from one client address or network in the current window.

    Kept in the database (not in memory) so every `dash serve` process counts the same tries.
    """

    __tablename__ = "login_throttles"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime]


class FeedbackSnippet(Base):
    """A coach's saved reply for common feedback."""

    __tablename__ = "feedback_snippets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
