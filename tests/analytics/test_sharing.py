"""Shared learning by consent: the cohort board as another team sees it, and the story digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dash.actions.consent import set_consent
from dash.actions.stories import queue_story_digest
from dash.links import make_token
from dash.models import (
    Aim,
    Cohort,
    Message,
    OutboxItem,
    PdsaCycle,
    Priority,
    Team,
    TeamState,
)
from dash.sharing import board_url, cohort_board, weekly_story_digest
from tests.support.board import board_page, get
from tests.support.cohort_data import (
    add_cycle,
    add_values,
    make_cohort,
    make_team,
    primary,
    today_local,
)


@pytest.fixture
def cohort_with_two_teams(db):
    """'5 West' has data, an aim, an adopted change and a story; '6 East' views the board."""
    with db.transaction() as s:
        cohort = make_cohort(s)
        west = make_team(s, cohort, "5 West", people=[{"fields": {"console": "w1"}}])
        east = make_team(s, cohort, "6 East", people=[{"fields": {"console": "e1"}}])
        measure = primary(s, cohort)
        start = cohort.start_date - timedelta(days=3)
        add_values(s, west, measure, start, [(5, 10), (6, 10), (4, 10), (8, 10), (9, 10)])
        add_values(s, east, measure, start, [(3, 10), None, (2, 10)])
        s.add(
            Aim(
                team_id=west.id,
                measure_id=measure.id,
                text="By the last day, 90% of opioid doses on 5 West have a POSS score first",
                goal=0.9,
                baseline=0.5,
                target_date=cohort.start_date + timedelta(days=13),
            )
        )
        add_cycle(
            s,
            west,
            1,
            "POSS sticker on the MAR",
            act="adopt",
            story="Night shift loved the sticker; scores went up within two days",
        )
        add_cycle(s, east, 1, "Huddle reminder about sedation scores")
        return cohort.id, west.id, east.id


def test_consent_switches_what_another_team_sees(ctx, db, cohort_with_two_teams) -> None:
    cohort_id, west_id, east_id = cohort_with_two_teams

    # Before 5 West consents, 6 East sees it only inside the anonymous counts.
    page = board_page(ctx, east_id)
    assert "5 West" not in page
    assert "sticker" not in page.lower()
    assert "POSS score first" not in page  # neither its aim ...
    assert "Latest 90%" not in page  # ... nor its latest value (9/10)
    assert "1 other team, 1 reporting data, 1 PDSA cycle between them" in page
    with db.transaction() as s:
        board = cohort_board(s, cohort_id, viewer_team_id=east_id, today=today_local())
    assert board.shared == []
    assert (board.anonymous.n_teams, board.anonymous.n_reporting) == (1, 1)

    with db.transaction() as s:
        set_consent(s, team=s.get(Team, west_id), shared=True, by=None, via="web")

    # After consent: name, progress toward the aim, the adopted change and its story.
    page = board_page(ctx, east_id)
    assert "5 West" in page
    assert "POSS sticker on the MAR" in page
    assert "Night shift loved the sticker" in page
    assert "Latest 90%" in page and "goal 90%" in page
    assert "Other teams" not in page  # nobody is left anonymous
    with db.transaction() as s:
        board = cohort_board(s, cohort_id, viewer_team_id=east_id, today=today_local())
    (west,) = board.shared
    assert west.progress[0].latest == pytest.approx(0.9)
    assert west.progress[0].goal_reached is True
    assert west.adopted[0].story.startswith("Night shift")


def test_a_team_always_sees_itself_in_full(ctx, db, cohort_with_two_teams) -> None:
    _, west_id, east_id = cohort_with_two_teams
    page = board_page(ctx, west_id)  # 5 West has not consented, yet sees its own data
    assert "Your team" in page and "5 West" in page
    assert "Night shift loved the sticker" in page
    assert "Latest 90%" in page
    assert "other teams see only that you take part" in page
    assert "6 East" not in page  # and it does not see the other, non-consenting team


def test_board_escapes_team_text(ctx, db, cohort_with_two_teams) -> None:
    _, west_id, east_id = cohort_with_two_teams
    with db.transaction() as s:
        west = s.get(Team, west_id)
        set_consent(s, team=west, shared=True, by=None, via="web")
        cycle = s.execute(select(PdsaCycle).where(PdsaCycle.team_id == west_id)).scalar_one()
        cycle.story = "<script>alert('x')</script> it worked"
    page = board_page(ctx, east_id)
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


def test_board_link_must_be_genuine(ctx, db, cohort_with_two_teams) -> None:
    _, west_id, _ = cohort_with_two_teams
    forged = make_token("another-secret", "board", west_id)
    assert get(ctx, f"/board/{forged}").status_code == 403
    signoff = make_token(ctx.secret, "signoff", west_id)  # right key, wrong purpose
    response = get(ctx, f"/board/{signoff}")
    assert response.status_code == 403
    assert "5 West" not in response.text
    assert "not valid" in response.text
    good = board_url(ctx.settings, ctx.secret, west_id)
    assert good.startswith(ctx.settings.public_url + "/board/")
    assert get(ctx, good.removeprefix(ctx.settings.public_url)).status_code == 200


def test_story_digest_only_tells_consenting_teams_stories_and_reaches_every_team(db) -> None:
    week_start = date(2026, 12, 7)
    during = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)
    with db.transaction() as s:
        cohort = make_cohort(s, start=week_start)
        west = make_team(
            s,
            cohort,
            "5 West",
            people=[
                {"name": "Ana", "language": "es", "fields": {"sms": "+15550000001"}},
                {"name": "Bob", "fields": {"whatsapp": "+15550000002"}},
            ],
        )
        east = make_team(
            s,
            cohort,
            "6 East",
            people=[{"name": "Cy", "fields": {"telegram": 42}}],
            group_chat=-1001,
        )
        north = make_team(
            s, cohort, "7 North", people=[{"name": "Di", "fields": {"console": "d1"}}]
        )
        make_team(
            s,
            cohort,
            "8 South",
            state=TeamState.AWAITING_SIGNOFF.value,
            people=[{"name": "Ed", "fields": {"console": "e5"}}],
        )
        set_consent(s, team=west, shared=True, by=None, via="web")
        set_consent(s, team=east, shared=True, by=None, via="web")
        add_cycle(
            s, west, 1, "POSS sticker", act="adopt", story="Stickers work", story_shared_at=during
        )
        add_cycle(
            s,
            east,
            1,
            "Sedation huddle",
            act="adopt",
            story="Huddles stuck",
            story_shared_at=during,
        )
        add_cycle(  # last week's story is not told again
            s,
            east,
            2,
            "Old idea",
            act="adopt",
            story="Old news",
            story_shared_at=during - timedelta(days=7),
        )
        add_cycle(
            s,
            east,
            3,
            "Abandoned idea",
            act="abandon",
            story="Did not work",
            story_shared_at=during,
        )
        add_cycle(  # 7 North did not consent: its story stays private
            s,
            north,
            1,
            "Secret change",
            act="adopt",
            story="North's private story",
            story_shared_at=during,
        )
        cohort_id = cohort.id

    with db.transaction() as s:
        items = weekly_story_digest(s, cohort_id, week_start)
    assert [(i.team_name, i.story) for i in items] == [
        ("5 West", "Stickers work"),
        ("6 East", "Huddles stuck"),
    ]

    with db.transaction() as s:
        sent = queue_story_digest(s, s.get(Cohort, cohort_id), week_start)
    assert len(sent) == 4

    with db.transaction() as s:
        rows = s.execute(
            select(OutboxItem, Message).join(Message, Message.id == OutboxItem.message_id)
        ).all()
        by_address = {(o.channel, o.address): (o, m) for o, m in rows}
        # every enrolled team's channel: SMS and WhatsApp members, the Telegram group once
        # (its member reads it there), the console member; nobody from the team still enrolling
        assert set(by_address) == {
            ("sms", "+15550000001"),
            ("whatsapp", "+15550000002"),
            ("telegram", "-1001"),
            ("console", "d1"),
        }
        for outbox, message in by_address.values():
            assert outbox.priority == Priority.BULK
            assert outbox.dedupe_key.startswith(f"stories:{cohort_id}:2026-12-07:")
            assert "Stickers work" in message.text and "Huddles stuck" in message.text
            assert "private story" not in message.text and "Secret change" not in message.text
            assert "Old news" not in message.text and "Did not work" not in message.text
        spanish = by_address[("sms", "+15550000001")][1].text
        assert spanish.startswith("Ana, historias de esta semana")
        assert by_address[("whatsapp", "+15550000002")][1].text.startswith("Bob, this week's")

    # A scheduler restart queues it again: nothing new goes out.
    with db.transaction() as s:
        assert queue_story_digest(s, s.get(Cohort, cohort_id), week_start) == []
        assert len(s.execute(select(OutboxItem)).all()) == 4
