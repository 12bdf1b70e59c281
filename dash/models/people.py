"""Organisations, units and the people who talk to the system."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dash.models.base import Base, BigId
from dash.timeutil import utcnow


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    units: Mapped[list[Unit]] = relationship(back_populates="organisation")


class Unit(Base):
    """A ward or clinic: the place a Dash team works."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="units")


class Person(Base):
    """Anyone the system knows: team members, key contacts, leaders, coaches, admins.

    How to reach them lives in their `addresses`, one row per channel address. Coaches and
    admins also have an e-mail and a password hash for the dashboard.
    """

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint("failed_logins >= 0", name="failed_logins"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_coach: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    # Copied into each dashboard session at log-in; raising it ends every session at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    opted_out_at: Mapped[datetime | None]
    opted_out_reason: Mapped[str | None] = mapped_column(String(200))
    privacy_reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[Address]] = relationship(
        back_populates="person", cascade="all, delete-orphan", order_by="Address.id"
    )

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


class Address(Base):
    """One way to reach a person: a channel and their address on it.

    `address` identifies the sender of an inbound message, so it is unique per channel; it is
    empty while only a `display` name is known (a leader named by @username who has not
    written yet). `chat_id` is where messages to them go; empty while they cannot be written
    to (a Telegram user seen only in a group). `last_inbound_at` is when they last wrote from
    here: the most recent address is the one a message goes to, and channels with a reply
    window (WhatsApp's 24 hours) read it.
    """

    __tablename__ = "addresses"
    __table_args__ = (
        UniqueConstraint("channel", "address"),
        # Phone channels hold E.164 numbers (dash.phones); the database refuses anything else.
        CheckConstraint(
            "channel NOT IN ('sms', 'whatsapp') OR address IS NULL OR address LIKE '+%'",
            name="phone_e164",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(254))
    chat_id: Mapped[str | None] = mapped_column(String(254))
    display: Mapped[str | None] = mapped_column(String(254))
    last_inbound_at: Mapped[datetime | None]
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="addresses")
