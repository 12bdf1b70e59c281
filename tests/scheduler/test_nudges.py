"""Nudges: only when data is missing, escalating reporter → key contact → leader, never in
quiet hours, and silent as soon as the data arrives."""

from __future__ import annotations

from datetime import date, time, timedelta

from sqlalchemy import select

from dash.models import AgendaItem, Cohort, MeasureValue, Message, Role, Team
from scheduler.tick import dispatch
from tests.support.agenda import START, ny, people, report_data, row
from tests.support.people import address_on
from tests.support.teams import make_cohort, make_team


def nudges(s) -> list[Message]:
    return list(
        s.execute(select(Message).where(Message.kind.like("nudge%")).order_by(Message.id)).scalars()
    )


def run_day(ctx, day: date) -> None:
    """The day's prompt at 18:00 and its nudge at 20:00 (local), as the scheduler would."""
    dispatch(ctx, ny(day, 18, 0))
    dispatch(ctx, ny(day, 20, 0))


def setup(ctx, **kwargs) -> int:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort, **kwargs)
        return team.id


def test_no_nudge_when_the_data_came_in(ctx) -> None:
    team_id = setup(ctx)
    dispatch(ctx, ny(START, 18, 0))
    with ctx.db.transaction() as s:
        report_data(s, team_id, START)
    dispatch(ctx, ny(START, 20, 0))
    with ctx.db.transaction() as s:
        assert nudges(s) == []
        nudge = row(s, team_id, f"nudge:{START}")
        assert nudge.state == "done" and "data arrived" in nudge.note


def test_missing_data_nudges_the_reporter_once(ctx) -> None:
    team_id = setup(ctx, reporters=2)
    run_day(ctx, START)
    dispatch(ctx, ny(START, 20, 30))  # a later tick does not nudge again
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        reporters = {p.id for p in people(s, team, Role.DATA_REPORTER.value)}
        sent = nudges(s)
        assert {m.person_id for m in sent} == reporters and len(sent) == 2
        assert all(m.kind == "nudge_reporter" for m in sent)
        assert "Monday 7 December" in sent[0].text
        assert "7/9" in sent[0].text
        assert "days are missing" not in sent[0].text  # the first missed day


def test_partial_data_nudges_about_the_missing_measure_only(ctx) -> None:
    team_id = setup(ctx)
    dispatch(ctx, ny(START, 18, 0))
    with ctx.db.transaction() as s:
        report_data(s, team_id, START, measures=1)  # only the primary measure
        names = [m.name for m in s.get(Cohort, s.get(Team, team_id).cohort_id).measures]
    dispatch(ctx, ny(START, 20, 0))
    with ctx.db.transaction() as s:
        [nudge] = nudges(s)
        assert names[1].split()[0].lower() in nudge.text.lower()


def test_without_a_data_reporter_the_key_contact_is_nudged(ctx) -> None:
    team_id = setup(ctx, reporters=0)
    run_day(ctx, START)
    with ctx.db.transaction() as s:
        [nudge] = nudges(s)
        assert nudge.person_id == s.get(Team, team_id).key_contact_id


def test_missed_days_escalate_then_stop_when_data_arrives(ctx) -> None:
    team_id = setup(ctx)
    days = [START + timedelta(days=i) for i in range(5)]
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        reporter = people(s, team, Role.DATA_REPORTER.value)[0].id
        contact, leader = team.key_contact_id, team.leader_id
    # The last baseline day was asked and answered.
    run_day_answered = START - timedelta(days=1)
    dispatch(ctx, ny(run_day_answered, 18, 0))
    with ctx.db.transaction() as s:
        report_data(s, team_id, run_day_answered)

    def sent_on(day_index: int) -> list[tuple[int, str]]:
        run_day(ctx, days[day_index])
        with ctx.db.transaction() as s:
            return [
                (m.person_id, m.kind)
                for m in nudges(s)
                if _row_key(s, m) == f"nudge:{days[day_index].isoformat()}"
            ]

    assert sent_on(0) == [(reporter, "nudge_reporter")]
    assert sorted(sent_on(1)) == sorted(
        [(reporter, "nudge_reporter"), (contact, "nudge_key_contact")]
    )
    assert sorted(sent_on(2)) == sorted([(reporter, "nudge_reporter"), (leader, "nudge_leader")])
    # Day 4: the data arrives before the nudge: silence, and the streak is over.
    dispatch(ctx, ny(days[3], 18, 0))
    with ctx.db.transaction() as s:
        report_data(s, team_id, days[3])
    dispatch(ctx, ny(days[3], 20, 0))
    with ctx.db.transaction() as s:
        assert len(nudges(s)) == 5
    # Day 5 missed again: a new streak starts with the reporter only.
    assert sent_on(4) == [(reporter, "nudge_reporter")]
    with ctx.db.transaction() as s:
        texts = {m.kind: m.text for m in nudges(s)}
        assert "2 days" in texts["nudge_key_contact"]
        assert "3 days" in texts["nudge_leader"]


def _row_key(s, message: Message) -> str:
    """The day of the nudge row that queued `message` (from its outbox dedupe key)."""
    from dash.models import OutboxItem

    item = s.execute(select(OutboxItem).where(OutboxItem.message_id == message.id)).scalar_one()
    row_id = int(item.dedupe_key.split(":")[1])
    return s.get(AgendaItem, row_id).step_key


def test_nudges_are_never_sent_in_quiet_hours(ctx) -> None:
    team_id = setup(ctx)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        team.quiet_start, team.quiet_end = time(19, 30), time(7, 0)
    run_day(ctx, START)  # 20:00 nudge falls in quiet hours that last past its grace
    dispatch(ctx, ny(START + timedelta(days=1), 7, 0))
    with ctx.db.transaction() as s:
        assert nudges(s) == []
        nudge = row(s, team_id, f"nudge:{START}")
        assert nudge.state == "skipped" and "quiet hours" in nudge.note


def test_days_nobody_was_asked_about_do_not_count_as_missed(ctx) -> None:
    """Baseline prompts were never sent (the scheduler started late): day 1 is the first miss."""
    team_id = setup(ctx)
    run_day(ctx, START)
    run_day(ctx, START + timedelta(days=1))
    with ctx.db.transaction() as s:
        kinds = sorted(m.kind for m in nudges(s))
        assert kinds == ["nudge_key_contact", "nudge_reporter", "nudge_reporter"]
        assert row(s, team_id, f"daily:{START - timedelta(days=1)}:poss-before-dose").state == (
            "skipped"
        )


def test_no_nudge_about_a_day_whose_prompt_never_went_out(ctx) -> None:
    team_id = setup(ctx)
    # The scheduler was down from before the prompt until just after the nudge time.
    dispatch(ctx, ny(START, 20, 30))
    with ctx.db.transaction() as s:
        assert nudges(s) == []
        nudge = row(s, team_id, f"nudge:{START}")
        assert nudge.state == "done" and "no prompt" in nudge.note


def test_a_reply_through_the_engine_answers_the_prompt_and_silences_the_nudge(ctx) -> None:
    """End to end: the prompt goes out, the reporter answers "7/9" on the console channel, the
    engine records it for the prompt's measure and day, and the nudge finds the data."""
    from zoneinfo import ZoneInfo

    from dash.engine import handle_inbound
    from dash.inbound import InboundMessage
    from dash.timeutil import local_to_utc, utcnow

    tz = "America/New_York"
    today = utcnow().astimezone(ZoneInfo(tz)).date()
    day = today - timedelta(days=2)  # a day whose prompt and nudge times have passed
    with ctx.db.transaction() as s:
        cohort = make_cohort(s, start=day - timedelta(days=3), tz=tz)
        team = make_team(s, cohort)
        team_id = team.id
        reporter = people(s, team, Role.DATA_REPORTER.value)[0]
        address = address_on(reporter, "console")
        first_key = cohort.measures[0].key
    dispatch(ctx, local_to_utc(day, time(18, 0), tz))
    for n, text in enumerate(("7/9", "3 of 4")):
        handle_inbound(
            ctx,
            InboundMessage(
                channel="console",
                provider_id=f"reply-{n}",
                address=address,
                sender=address,
                text=text,
                received_at=utcnow(),
                raw={"text": text},
            ),
        )
    with ctx.db.transaction() as s:
        values = (
            s.execute(
                select(MeasureValue).where(MeasureValue.team_id == team_id, MeasureValue.day == day)
            )
            .scalars()
            .all()
        )
        assert sorted((v.numerator, v.denominator) for v in values) == [(3, 4), (7, 9)]
        assert {v.measure.key for v in values if v.numerator == 7} == {first_key}
    dispatch(ctx, local_to_utc(day, time(20, 0), tz))
    with ctx.db.transaction() as s:
        assert nudges(s) == []
        assert "data arrived" in row(s, team_id, f"nudge:{day}").note
