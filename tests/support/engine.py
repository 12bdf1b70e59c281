"""Helpers for the conversation-engine tests: talk through handle_inbound, read the outbox.

Everything goes through the real engine and database; replies are read back from the
messages and outbox rows the engine queued, exactly what the delivery worker would send.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import func, select

from bots import registry
from bots.channel import ChannelType
from dash.actions.cohorts import create_cohort
from dash.context import AppContext
from dash.engine import InboundResult, handle_inbound
from dash.inbound import InboundMessage
from dash.models import AgendaItem, Cohort, Measure, Message, OutboxItem, Team
from dash.queries.people import person_for
from dash.timeutil import local_date, local_to_utc, utcnow

_ids = itertools.count(1)


@dataclass
class Reply:
    text: str
    payload: dict[str, Any]
    channel: str
    address: str
    #: Kept in the thread but not sent (a cap or the daily budget held it): nobody reads it.
    held: bool = False


@dataclass
class Chat:
    """A conversation harness: send as anyone on any channel, read what the bot queued."""

    ctx: AppContext
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    start: int = 0

    def __post_init__(self) -> None:
        """Replies queued before this chat began are history, not news."""
        with self.ctx.db.transaction() as s:
            self.start = s.execute(select(func.max(Message.id))).scalar_one() or 0

    def send(
        self,
        address: str,
        text: str,
        *,
        channel: str = "console",
        sender: str | None = None,
        provider_id: str | None = None,
        language: str | None = None,
        callback_data: str | None = None,
        is_group: bool = False,
        sender_name: str = "",
        media: list[dict[str, Any]] | None = None,
        event: str = "message",
        raw: dict[str, Any] | None = None,
    ) -> InboundResult:
        return handle_inbound(
            self.ctx,
            InboundMessage(
                channel=channel,
                provider_id=provider_id or f"test-{next(_ids)}",
                address=address,
                sender=sender or address,
                text=text,
                received_at=utcnow(),
                raw=raw or {"text": text},
                sender_name=sender_name,
                language=language,
                is_group=is_group,
                callback_data=callback_data,
                media=media or [],
                event=event,
                provider_confirms_stop=_channel_type(channel).confirms_stop,
                provider_confirms_start=_channel_type(channel).confirms_start,
                address_kind=_channel_type(channel).address_kind,
            ),
        )

    def replies(self, address: str, channel: str = "console") -> list[Reply]:
        """New outbound messages queued to `address` since the last call."""
        key = (channel, address)
        with self.ctx.db.transaction() as s:
            rows = s.execute(
                select(Message, OutboxItem)
                .join(OutboxItem, OutboxItem.message_id == Message.id)
                .where(
                    Message.direction == "out",
                    Message.channel == channel,
                    Message.address == address,
                    Message.id > max(self.seen.get(key, 0), self.start),
                )
                .order_by(Message.id)
            ).all()
        if rows:
            self.seen[key] = rows[-1][0].id
        return [
            Reply(m.text, dict(o.payload or {}), m.channel, m.address, held=o.state == "held")
            for m, o in rows
        ]

    def text(self, address: str, channel: str = "console") -> str:
        """All new replies to `address`, joined (what the person reads next)."""
        return "\n".join(r.text for r in self.replies(address, channel))

    def say(self, address: str, text: str, **kwargs: Any) -> str:
        """Send `text` from `address` and return the replies to it."""
        self.send(address, text, **kwargs)
        channel = kwargs.get("channel", "console")
        return self.text(address, channel)


def make_cohort(ctx: AppContext, topic: str = "opioid-safety", tz: str = "UTC") -> Cohort:
    with ctx.db.transaction() as s:
        today = local_date(utcnow(), tz)  # the cohort's own today, on the test's clock
        cohort = create_cohort(s, topic=topic, start=today, timezone=tz, name="Test cohort")
        s.flush()
        s.expunge(cohort)
        return cohort


KC = "+15551230001"
LEADER = "+15551230002"


def enrol(
    chat: Chat, cohort: Cohort, kc: str = KC, leader: str = LEADER, unit: str = "5 West"
) -> Team:
    """A whole enrolment by chat, approved by the leader; returns the enrolled team."""
    if "What is your name?" in chat.say(kc, f"JOIN {cohort.enrolment_code}"):
        chat.say(kc, "Maria Lopez")
    chat.say(kc, "St Mary's Hospital")
    chat.say(kc, unit)
    for score in ("5", "4", "3", "4", "5"):
        chat.say(kc, score)
    chat.say(kc, "Ana Ruiz, Chief Nursing Officer")
    chat.say(kc, leader if leader != kc else "me")
    chat.say(leader, "YES")
    chat.text(kc)
    with chat.ctx.db.transaction() as s:
        team = (
            s.execute(
                select(Team)
                .where(Team.key_contact_id == person_id(chat.ctx, kc))
                .order_by(Team.id.desc())
            )
            .scalars()
            .first()
        )
        assert team is not None and team.state == "enrolled", team and team.state
        s.expunge(team)
        return team


def person_id(ctx: AppContext, console_address: str) -> int | None:
    with ctx.db.transaction() as s:
        person = person_for(s, "console", console_address)
        return person.id if person is not None else None


def add_prompt(
    ctx: AppContext, team: Team, measure_key: str, day: date, at: time = time(9)
) -> None:
    """A daily prompt as the scheduler leaves it once sent (the shared contract)."""
    with ctx.db.transaction() as s:
        t = s.get(Team, team.id)
        assert t is not None
        s.add(
            AgendaItem(
                cohort_id=t.cohort_id,
                team_id=t.id,
                step_key=f"daily_prompt:{measure_key}:{day.isoformat()}",
                kind="daily_prompt",
                due_at=min(
                    local_to_utc(day, at, t.cohort.timezone), utcnow() - timedelta(minutes=1)
                ),
                local_day=day,
                payload={"measure": measure_key, "day": day.isoformat()},
                state="done",
                finished_at=utcnow(),
            )
        )


def primary_key(ctx: AppContext, team: Team) -> str:
    with ctx.db.transaction() as s:
        return s.execute(
            select(Measure.key).where(
                Measure.cohort_id == team.cohort_id, Measure.primary.is_(True)
            )
        ).scalar_one()


def _channel_type(channel: str) -> ChannelType:
    """What the channel's own adapter would say about STOP (a plain type if unregistered)."""
    try:
        return registry.type_for(channel)
    except KeyError:
        return ChannelType()
