"""The database itself refuses what the model forbids, whoever writes to it."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError

from dash.actions.cohorts import create_cohort
from dash.models import (
    MeasureValue,
    Message,
    Organisation,
    PriorityMatrix,
    Team,
    Unit,
)
from tests.support.people import reachable


@pytest.fixture
def team(db):
    with db.transaction() as s:
        cohort = create_cohort(s, topic="opioid-safety", start=date(2026, 12, 7), timezone="UTC")
        org = Organisation(name="St Mary's")
        unit = Unit(organisation=org, name="5 West")
        s.add_all([org, unit])
        s.flush()
        t = Team(cohort_id=cohort.id, unit_id=unit.id, name="5 West", state="enrolled")
        s.add(t)
        s.flush()
        return t.id, cohort.measures[0].id


def _value(team_id: int, measure_id: int, n: int, d: int, current: bool = True) -> MeasureValue:
    return MeasureValue(
        team_id=team_id,
        measure_id=measure_id,
        day=date(2026, 12, 8),
        numerator=n,
        denominator=d,
        channel="sms",
        is_current=current,
    )


def test_second_current_value_for_same_team_measure_day_is_refused(db, team) -> None:
    team_id, measure_id = team
    with db.transaction() as s:
        s.add(_value(team_id, measure_id, 5, 9))
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(_value(team_id, measure_id, 7, 9))


def test_replaced_values_are_kept_as_history(db, team) -> None:
    team_id, measure_id = team
    with db.transaction() as s:
        s.add(_value(team_id, measure_id, 5, 9, current=False))
        s.add(_value(team_id, measure_id, 6, 9, current=False))
        s.add(_value(team_id, measure_id, 7, 9))
    with db.transaction() as s:
        assert s.query(MeasureValue).count() == 3


@pytest.mark.parametrize(("n", "d"), [(10, 9), (-1, 9), (3, 0)])
def test_impossible_counts_are_refused(db, team, n: int, d: int) -> None:
    team_id, measure_id = team
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(_value(team_id, measure_id, n, d))


def test_duplicate_provider_message_id_is_refused(db) -> None:
    def msg() -> Message:
        return Message(
            direction="in", channel="sms", provider_id="SM123", text="7/9", status="received"
        )

    with db.transaction() as s:
        s.add(msg())
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(msg())
    # The same id on another channel is a different message.
    with db.transaction() as s:
        other = msg()
        other.channel = "whatsapp"
        s.add(other)


def test_matrix_scores_and_total_are_checked(db, team) -> None:
    team_id, _ = team
    good = dict(importance=5, influence=4, project_length=3, expense=2, frequency=1)
    with db.transaction() as s:
        s.add(PriorityMatrix(team_id=team_id, revision=1, total=15, **good))
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(PriorityMatrix(team_id=team_id, revision=2, total=16, **good))
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(PriorityMatrix(team_id=team_id, revision=3, total=20, **(good | {"importance": 10})))


def test_team_state_phone_format_and_one_owner_per_address_are_checked(db, team) -> None:
    team_id, _ = team
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.get(Team, team_id).state = "maybe"
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(reachable(name="X", sms="5551234567"))
    with db.transaction() as s:
        s.add(reachable(name="A", sms="+15551230001"))
        s.add(reachable(name="W", whatsapp="+15551230001"))  # the same number on another channel
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(reachable(name="B", sms="+15551230001"))


def test_a_long_email_address_is_queued_and_kept_whole(db) -> None:
    """An address may be as long as an e-mail address may be (254), in the thread and outbox."""
    from dash.actions.queueing import queue_message
    from dash.models import OutboxItem

    address = "a" * 180 + "@" + "ward-five-west." * 4 + "example.org"
    assert 200 < len(address) <= 254
    with db.transaction() as s:
        message = queue_message(s, channel="email", address=address, text="Your digest")
        message_id = message.id
    with db.transaction() as s:
        item = s.query(OutboxItem).filter_by(message_id=message_id).one()
        assert item.address == address
        assert s.get(Message, message_id).address == address
