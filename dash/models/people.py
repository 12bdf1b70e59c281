"""Organisations, units and the people who talk to the system."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint
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

    Channel addresses are unique so an inbound message maps to exactly one person.
    Phone numbers are E.164 (dash.phones). Coaches and admins also have an e-mail
    and a password hash for the dashboard.
    """

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint("phone_e164 IS NULL OR phone_e164 LIKE '+%'", name="phone_e164"),
        CheckConstraint("whatsapp_e164 IS NULL OR whatsapp_e164 LIKE '+%'", name="whatsapp_e164"),
        CheckConstraint("failed_logins >= 0", name="failed_logins"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(20), unique=True)
    whatsapp_e164: Mapped[str | None] = mapped_column(String(20), unique=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    console_address: Mapped[str | None] = mapped_column(String(64), unique=True)
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
    whatsapp_last_inbound_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    privacy_reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None
