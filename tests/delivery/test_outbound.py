"""queue_many: the set-wise queue behind the scheduler's fan-out keeps queue_message's rules."""

from __future__ import annotations

from sqlalchemy import select

from dash.actions.queueing import Draft, queue_many, queue_message
from dash.models import Message, OutboxItem, Person, Priority, Team
from dash.settings import get_settings
from dash.timeutil import utcnow
from tests.support.people import reachable


def _person(s, name: str, **kwargs) -> Person:
    person = reachable(name=name, console=f"console:{name.lower()}", **kwargs)
    s.add(person)
    s.flush()
    return person


def test_queue_many_queues_each_once_in_order_and_leaves_out_stopped_people(db) -> None:
    with db.transaction() as s:
        ana, bo = _person(s, "Ana"), _person(s, "Bo", opted_out_at=utcnow())
        drafts = [
            Draft("console", "console:ana", "First", person=ana, dedupe_key="k:1"),
            Draft("console", "console:bo", "Never", person=bo, dedupe_key="k:2"),
            Draft("console", "console:ana", "Second", person=ana, dedupe_key="k:3"),
            Draft("console", "console:ana", "Repeat", person=ana, dedupe_key="k:1"),
        ]
        assert queue_many(s, drafts) == [True, False, True, False]
    with db.transaction() as s:
        # A second run (a reclaimed agenda row) queues nothing again.
        assert queue_many(s, [Draft("console", "console:ana", "First", dedupe_key="k:1")]) == [
            False
        ]
        rows = list(s.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())
        assert [(o.dedupe_key, o.message.text, o.state) for o in rows] == [
            ("k:1", "First", "queued"),
            ("k:3", "Second", "queued"),
        ]
        assert all(o.message.person_id == o.person_id for o in rows)


BULK = Priority.BULK


def test_queue_many_holds_identical_text_past_the_hourly_cap(db) -> None:
    cap = get_settings().identical_outbound_cap
    with db.transaction() as s:
        queue_message(s, channel="console", address="console:loop", text="Same", priority=BULK)
        drafts = [Draft("console", "console:loop", "Same", priority=BULK) for _ in range(cap)]
        drafts.append(Draft("console", "console:other", "Same", priority=BULK))
        assert all(queue_many(s, drafts))
    with db.transaction() as s:
        looped = list(
            s.execute(
                select(Message).where(Message.address == "console:loop").order_by(Message.id)
            ).scalars()
        )
        assert [m.status for m in looped] == ["queued"] * cap + ["held"]
        other = s.execute(select(Message).where(Message.address == "console:other")).scalar_one()
        assert other.status == "queued"
        held = s.execute(select(OutboxItem).where(OutboxItem.state == "held")).scalar_one()
        assert held.last_error == "identical message cap reached"


def test_the_cap_counts_every_chat_of_a_fan_out_larger_than_one_statement(db) -> None:
    # 2,500 chats, each already at the cap: the count goes in chunks of 2,000 drafts (SQLite
    # takes at most 32,766 parameters a statement), and a chat in the second chunk is held
    # like one in the first.
    cap = get_settings().identical_outbound_cap
    chats = [f"console:c{n}" for n in range(2500)]
    with db.transaction() as s:
        queue_many(
            s, [Draft("console", chat, "Same", priority=BULK) for chat in chats for _ in range(cap)]
        )
    with db.transaction() as s:
        again = queue_many(s, [Draft("console", chat, "Same", priority=BULK) for chat in chats])
        assert all(again)
        states = dict(
            s.execute(select(Message.address, Message.status).where(Message.id > 2500 * cap)).all()
        )
        assert len(states) == 2500 and set(states.values()) == {"held"}


def test_queue_message_holds_identical_text_past_the_hourly_cap_within_and_across_transactions(
    db,
) -> None:
    """A scheduled message repeating itself: the same text to one address, over and over."""
    cap = get_settings().identical_outbound_cap
    kw = {"channel": "console", "address": "console:loop", "priority": BULK}
    with db.transaction() as s:
        first = [queue_message(s, text="Same", **kw) for _ in range(cap - 1)]
    with db.transaction() as s:
        last_allowed = queue_message(s, text="Same", **kw)
        looped = queue_message(s, text="Same", **kw)
        other = queue_message(s, text="Different", **kw)
    assert all(m is not None and m.id for m in [*first, last_allowed, looped, other])
    with db.transaction() as s:
        states = s.execute(
            select(Message.text, OutboxItem.state)
            .join(OutboxItem, OutboxItem.message_id == Message.id)
            .order_by(Message.id)
        ).all()
    assert states == [("Same", "queued")] * cap + [("Same", "held"), ("Different", "queued")]


def test_a_reply_is_never_held_however_often_it_repeats(db) -> None:
    """A stuck person retrying gets the same answer each time: replies are not capped."""
    cap = get_settings().identical_outbound_cap
    with db.transaction() as s:
        for _ in range(cap + 3):
            queue_message(s, channel="console", address="console:stuck", text="Same")
        queue_many(s, [Draft("console", "console:stuck", "Same") for _ in range(2)])
    with db.transaction() as s:
        states = set(s.execute(select(OutboxItem.state)).scalars())
    assert states == {"queued"}


def test_a_held_scheduled_message_waits_for_the_teams_coach(ctx) -> None:
    from tests.support.engine import Chat, enrol, make_cohort

    team = enrol(Chat(ctx), make_cohort(ctx))
    cap = get_settings().identical_outbound_cap
    with ctx.db.transaction() as s:
        for _ in range(cap + 1):
            queue_message(
                s, channel="console", address="console:kc", text="Prompt", team=team.id,
                priority=BULK,
            )
    with ctx.db.transaction() as s:
        held = s.execute(select(Message).where(Message.status == "held")).scalar_one()
        assert held.needs_reply and held.team_id == team.id
        assert s.get(Team, team.id).needs_coach_since is not None
