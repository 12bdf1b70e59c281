"""The coach's Today list: what it says, in which order, and that its cost does not grow with
the number of teams the coach looks after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dash.actions.cohorts import create_cohort
from dash.context import AppContext
from dash.dbplans import StatementCounter
from dash.models import Cohort, MeasureValue, Message, PdsaCycle, Person, Team
from dash.models.teams import TeamState
from dash.web.today import needs_me
from tests.support import web as w

NOW = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)  # 11:00 in New York, 04:00 next day in Auckland
POSS = "POSS documented before opioid doses"
PEAK = "Sedation rechecked at peak effect"
BOTH = f"{POSS}, {PEAK}"


def _values(s, team: Team, days: list[date], fraction: Callable[[date], tuple[int, int]]) -> None:
    for day in days:
        numerator, denominator = fraction(day)
        for measure in team.cohort.measures:
            s.add(
                MeasureValue(
                    team_id=team.id,
                    measure_id=measure.id,
                    day=day,
                    numerator=numerator,
                    denominator=denominator,
                    channel="console",
                    reported_at=NOW - timedelta(days=1),
                )
            )


def _waiting(s, team: Team, text: str, at: datetime) -> None:
    s.add(
        Message(
            team_id=team.id,
            direction="in",
            channel="console",
            address="nurse",
            text=text,
            status="processed",
            needs_reply=True,
            created_at=at,
        )
    )


def _cycle(
    s, team: Team, number: int, state: str, *, reviewed: bool = False, age: timedelta | None = None
) -> None:
    s.add(
        PdsaCycle(
            team_id=team.id,
            number=number,
            state=state,
            change_text=f"Change {number} for {team.name}, MRN 1234567",
            updated_at=NOW - (age or timedelta(hours=number)),
            reviewed_at=NOW if reviewed else None,
        )
    )


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.fixture
def world(ctx: AppContext) -> tuple[AppContext, int]:
    """A coach of two cohorts in different time zones (and a cohort that is not theirs)."""
    with ctx.db.transaction() as s:
        alpha = create_cohort(
            s,
            topic="opioid-safety",
            start=date(2026, 3, 3),
            timezone="America/New_York",
            name="Alpha",
        )
        beta = create_cohort(
            s,
            topic="opioid-safety",
            start=date(2026, 3, 10),
            timezone="Pacific/Auckland",
            name="Beta",
        )
        other = create_cohort(
            s, topic="opioid-safety", start=date(2026, 3, 3), timezone="UTC", name="Other"
        )
        coach = w.coach(s, "coach@example.org", cohorts=[alpha, beta])

        # A1: a shift on the run chart (low, then high), nothing in yet for today.
        a1 = w.team(s, alpha, "A1 Ward")
        _values(
            s,
            a1,
            _span(date(2026, 2, 24), date(2026, 3, 11)),
            lambda d: (2, 10) if d < date(2026, 3, 4) else (9, 10),
        )
        # A2: never reported; two people waiting, the older one first.
        a2 = w.team(s, alpha, "A2 Clinic")
        _waiting(s, a2, "Can we change the measure? Bed 12", NOW - timedelta(hours=5))
        _waiting(s, a2, "Hello?", NOW - timedelta(hours=1))
        # A3: one of two measures in for yesterday; a plan to review, others not.
        a3 = w.team(s, alpha, "A3 Unit")
        s.flush()
        s.add(
            MeasureValue(
                team_id=a3.id,
                measure_id=alpha.measures[0].id,
                day=date(2026, 3, 11),
                numerator=3,
                denominator=4,
                channel="console",
            )
        )
        _cycle(s, a3, 1, "planned")
        _cycle(s, a3, 2, "planning")
        _cycle(s, a3, 3, "done", reviewed=True)
        # A4: waiting for its leader, and someone already wrote.
        a4 = w.team(s, alpha, "A4 Pending", state=TeamState.AWAITING_SIGNOFF)
        a4.created_at = NOW - timedelta(days=2)
        _waiting(s, a4, "When do we start?", NOW - timedelta(hours=3))
        # B1: complete for its (Auckland) yesterday and today; waited longest.
        b1 = w.team(s, beta, "B1 Theatre")
        _values(s, b1, [date(2026, 3, 12), date(2026, 3, 13)], lambda d: (5, 5))
        _waiting(s, b1, "Morning!", NOW - timedelta(hours=20))
        # B2: nothing in; a done cycle not yet reviewed.
        b2 = w.team(s, beta, "B2 Recovery")
        _cycle(s, b2, 1, "done", age=timedelta(minutes=30))
        # Not the coach's: must not show.
        z9 = w.team(s, other, "Z9 Elsewhere")
        _waiting(s, z9, "Not for you", NOW - timedelta(hours=30))
        _cycle(s, z9, 1, "planned")
        s.flush()
        return ctx, coach.id


def _listed(ctx: AppContext, coach_id: int) -> list[tuple[str, str, str, str, datetime | None]]:
    with ctx.db.transaction() as s:
        coach = s.get(Person, coach_id)
        assert coach is not None
        return [
            (item.kind, item.team.name, item.summary, item.detail, item.since)
            for item in needs_me(s, coach, NOW)
        ]


def test_today_lists_every_kind_most_urgent_first_across_cohorts(world) -> None:
    ctx, coach_id = world
    assert _listed(ctx, coach_id) == [
        (
            "thread",
            "B1 Theatre",
            "1 message waiting for your reply",
            "Morning!",
            NOW - timedelta(hours=20),
        ),
        (
            "thread",
            "A2 Clinic",
            "2 messages waiting for your reply",
            "Can we change the measure? Bed 12",
            NOW - timedelta(hours=5),
        ),
        (
            "thread",
            "A4 Pending",
            "1 message waiting for your reply",
            "When do we start?",
            NOW - timedelta(hours=3),
        ),
        ("missing", "A2 Clinic", "No data for yesterday, Wed 11 Mar", BOTH, None),
        ("missing", "A3 Unit", "No data for yesterday, Wed 11 Mar", PEAK, None),
        ("missing", "B2 Recovery", "No data for yesterday, Thu 12 Mar", BOTH, None),
        ("signoff", "A4 Pending", "Waiting for the leader's sign-off", "", NOW - timedelta(days=2)),
        (
            "plan",
            "A3 Unit",
            "PDSA cycle 1 to review",
            "Change 1 for A3 Unit, [removed]",
            NOW - timedelta(hours=1),
        ),
        (
            "plan",
            "B2 Recovery",
            "PDSA cycle 1 to review",
            "Change 1 for B2 Recovery, [removed]",
            NOW - timedelta(minutes=30),
        ),
        (
            "signal",
            "A1 Ward",
            f"Run chart signal on {POSS}",
            "Non-random change (shift, runs): worth a word with the team.",
            None,
        ),
        ("missing_today", "A1 Ward", "No data for today (so far), Thu 12 Mar", BOTH, None),
        ("missing_today", "A2 Clinic", "No data for today (so far), Thu 12 Mar", BOTH, None),
        ("missing_today", "A3 Unit", "No data for today (so far), Thu 12 Mar", BOTH, None),
        ("missing_today", "B2 Recovery", "No data for today (so far), Fri 13 Mar", BOTH, None),
    ]


def test_the_today_page_shows_the_coachs_items_in_that_order(world) -> None:
    """Over HTTP at the real clock: the items that do not depend on the date, in order."""
    ctx, _ = world
    client = w.client_for(ctx)
    w.login(client, "coach@example.org")
    text = client.get("/").text
    assert "Z9 Elsewhere" not in text and "Not for you" not in text
    order = [
        text.index("1 message waiting for your reply"),
        text.index("2 messages waiting for your reply"),
        text.index("Waiting for the leader&#39;s sign-off"),
        text.index("PDSA cycle 1 to review"),
    ]
    assert order == sorted(order)
    assert "B1 Theatre" in text and "B2 Recovery" in text and "A3 Unit" in text


@pytest.mark.parametrize(
    "pattern",
    [
        [(2, 10)] * 9 + [(9, 10)] * 9,  # shift up, ending yesterday
        [(1, 10), (2, 10), (3, 10), (4, 10), (5, 10), (6, 10), (7, 10)],  # trend
        [(5, 10), (0, 0), (9, 10), None, (1, 10)] * 3,  # noise, gaps and 0/0 days
        [(9, 10)] * 7 + [(2, 10)] * 6 + [None] * 3,  # a shift that ended days ago
    ],
)
def test_today_signals_agree_with_the_teams_run_chart(ctx: AppContext, pattern) -> None:
    """The list's in-memory series gives the signal the chart's own `measure_series` shows."""
    from dash.chartdata import measure_series, primary_measure

    with ctx.db.transaction() as s:
        cohort = create_cohort(
            s, topic="opioid-safety", start=date(2026, 3, 3), timezone="America/New_York"
        )
        coach = w.coach(s, "coach@example.org", cohorts=[cohort])
        team = w.team(s, cohort, "5 West")
        measure = primary_measure(s, cohort.id)
        assert measure is not None
        for n, fraction in enumerate(pattern):
            if fraction is not None:
                s.add(
                    MeasureValue(
                        team_id=team.id,
                        measure_id=measure.id,
                        day=date(2026, 3, 11) - timedelta(days=len(pattern) - 1 - n),
                        numerator=fraction[0],
                        denominator=fraction[1],
                        channel="console",
                    )
                )
        s.flush()
        today = date(2026, 3, 12)
        series = measure_series(s, team, measure, today=today)
        latest = series.latest
        expected = series.signal and latest is not None and latest[0] >= today - timedelta(days=1)
        signals = [i for i in needs_me(s, coach, NOW) if i.kind == "signal"]
        assert len(signals) == (1 if expected else 0)
        if expected:
            rules = [
                n
                for n, f in (
                    ("shift", series.shift),
                    ("trend", series.trend),
                    ("runs", series.runs_signal),
                )
                if f
            ]
            assert (
                signals[0].detail
                == f"Non-random change ({', '.join(rules)}): worth a word with the team."
            )


def _grow(ctx: AppContext, first: int, n: int) -> None:
    """`n` more teams spread over the coach's two cohorts, each with something to report."""
    with ctx.db.transaction() as s:
        cohorts = list(
            s.execute(select(Cohort).where(Cohort.name.in_(["Alpha", "Beta"]))).scalars()
        )
        for i in range(first, first + n):
            cohort = cohorts[i % 2]
            team = w.team(s, cohort, f"Grown {i:02d}")
            _values(s, team, _span(date(2026, 2, 24), date(2026, 3, 10)), lambda d: (i % 4, 4))
            _waiting(s, team, f"Question {i}", NOW - timedelta(minutes=i + 1))
            _cycle(s, team, 1, "planned")


def _statements(ctx: AppContext, coach_id: int) -> tuple[int, int]:
    """(SQL statements, items) of one Today list."""
    with ctx.db.transaction() as s:
        coach = s.get(Person, coach_id)
        with StatementCounter(ctx.db.engine) as counter:
            items = needs_me(s, coach, NOW)
    return counter.count, len(items)


def test_today_queries_do_not_grow_with_the_coachs_teams(world) -> None:
    ctx, coach_id = world
    _grow(ctx, 0, 5)
    five, items_five = _statements(ctx, coach_id)
    _grow(ctx, 5, 15)
    twenty, items_twenty = _statements(ctx, coach_id)
    assert items_twenty > items_five  # the new teams are on the list...
    assert twenty == five  # ...at no extra round trip


def test_a_key_contact_stuck_before_the_team_exists_shows_on_today(ctx: AppContext) -> None:
    """Two answers the bot cannot use for the unit's name, before any team exists: the coach
    of the cohort whose code was sent sees who is stuck and what they wrote; another
    cohort's coach does not."""
    from tests.support.engine import Chat

    with ctx.db.transaction() as s:
        mine = w.cohort(s, name="Sepsis spring")
        other = w.cohort(s, name="Elsewhere")
        w.coach(s, "coach@example.org", cohorts=[mine])
        w.coach(s, "other@example.org", cohorts=[other])
        code = mine.enrolment_code
    chat = Chat(ctx)
    chat.say("+12025550461", f"JOIN {code}")
    chat.say("+12025550461", "Rosa Diaz")
    chat.say("+12025550461", "St Mary's Hospital")
    chat.say("+12025550461", "123")
    chat.say("+12025550461", "42")
    client = w.client_for(ctx)
    w.login(client, "coach@example.org")
    text = client.get("/").text
    assert "Rosa Diaz is stuck enrolling a unit" in text
    assert "Sepsis spring" in text and "42" in text
    other_client = w.client_for(ctx, "10.0.0.9")
    w.login(other_client, "other@example.org")
    assert "Rosa Diaz" not in other_client.get("/").text
