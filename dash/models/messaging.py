"""Messages (the team threads), the outbox that delivers them, and pending questions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dash.models.base import Base, BigId
from dash.timeutil import utcnow


class Channel(StrEnum):
    TELEGRAM = "telegram"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    CONSOLE = "console"
    WEB = "web"


class MessageStatus(StrEnum):
    """Inbound: received → processed. Outbound: queued → sending → sent → delivered → read,
    or failed / undelivered / held. The order lets status callbacks only move forward."""

    RECEIVED = "received"
    PROCESSED = "processed"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    HELD = "held"
    SKIPPED = "skipped"


STATUSES = tuple(s.value for s in MessageStatus)


class Message(Base):
    """Every message in or out, kept as sent; grouped into one thread per team.

    Inbound rows are written before any processing, with the provider's payload in
    `raw`. The provider id is unique per channel: a repeated delivery is a no-op.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        Index("ix_messages_team_created", "team_id", "created_at"),
        Index("ix_messages_needs_reply", "needs_reply", "created_at"),
        Index("ix_messages_person_created", "person_id", "created_at"),
        Index("ix_messages_address_created", "channel", "address", "created_at"),  # send cap
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(16))
    # As long as an e-mail address may be (addresses.address).
    address: Mapped[str] = mapped_column(String(254), default="")
    provider_id: Mapped[str | None] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(24), default="text")
    raw: Mapped[dict[str, Any] | None]
    media: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(12))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    needs_reply: Mapped[bool] = mapped_column(default=False)
    replied_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"
    CANCELLED = "cancelled"


class Priority:
    """Lower sorts first: replies go ahead of bulk."""

    REPLY = 0
    BULK = 1


#: The partial-index predicates of the outbox; due_outbox repeats them word for word (as
#: literals, not parameters) so both planners can prove the index applies.
OUTBOX_QUEUED = "state = 'queued'"
OUTBOX_SENDING = "state = 'sending'"
OUTBOX_LIVE = "state IN ('queued', 'sending')"


class OutboxItem(Base):
    """A delivery job for one outbound message; the worker claims, sends, records."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'failed', 'held', 'cancelled')", name="state"
        ),
        CheckConstraint("priority IN (0, 1)", name="priority"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_outbox_due", "state", "channel", "priority", "next_attempt_at"),
        # The claim (dash.queries.outbox.due_outbox) walks queued rows in send order and
        # stops at its limit, probing each row's chat for an earlier live row: both partial
        # indexes hold only rows still on their way, so a claim costs the same whatever the
        # backlog or the history of sent rows.
        Index(
            "ix_outbox_queued_order",
            "channel",
            "priority",
            "next_attempt_at",
            "id",
            postgresql_where=text(OUTBOX_QUEUED),
            sqlite_where=text(OUTBOX_QUEUED),
        ),
        Index(
            "ix_outbox_live_chat",
            "channel",
            "address",
            "id",
            postgresql_where=text(OUTBOX_LIVE),
            sqlite_where=text(OUTBOX_LIVE),
        ),
        Index(
            "ix_outbox_lease",
            "claimed_until",
            postgresql_where=text(OUTBOX_SENDING),
            sqlite_where=text(OUTBOX_SENDING),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(default=Priority.REPLY)
    state: Mapped[str] = mapped_column(String(12), default=OutboxState.QUEUED.value)
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    message: Mapped[Message] = relationship()


class PendingQuestion(Base):
    """The one question the bot is waiting for a person to answer, per person.

    `flow` and `step` name the question; `data` carries answers so far; `failures`
    counts bad answers so the thread can go to a coach instead of asking forever.
    """

    __tablename__ = "pending_questions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(24))
    step: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    failures: Mapped[int] = mapped_column(default=0)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
