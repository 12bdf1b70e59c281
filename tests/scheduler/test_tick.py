"""The tick: what is due becomes outbox rows once, stale rows are skipped, crashes lose nothing."""

from __future__ import annotations

from datetime import date, time, timedelta

from sqlalchemy import func, select

from dash.models import (
    AgendaItem,
    Cohort,
    MeasureValue,
    Message,
    PdsaCycle,
    Person,
    Priority,
    Role,
    Team,
)
from dash.timeutil import use_clock, utcnow
from scheduler.agenda import sync_team
from scheduler.runner import SchedulerService
from scheduler.tick import CLAIM_LEASE, claim_due, dispatch
from tests.support.agenda import START, ny, outbox, people, row
from tests.support.clock import RunningClock
from tests.support.teams import add_person, make_cohort, make_team


def texts_to(s, person: Person) -> list[str]:
    return [
        m.text
        for m in s.execute(
            select(Message).where(Message.person_id == person.id).order_by(Message.id)
        ).scalars()
    ]


def setup_team(ctx, **kwargs):
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        team = make_team(s, cohort, **kwargs)
        return cohort.id, team.id


def test_daily_prompt_goes_to_the_reporter_in_their_language(ctx) -> None:
    _, team_id = setup_team(ctx, language="es")
    report = dispatch(ctx, ny(START, 18, 1))
    assert report.compiled == 1
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        reporter = people(s, team, Role.DATA_REPORTER.value)[0]
        prompts = [o for o in outbox(s, person_id=reporter.id) if o.message.kind == "daily_prompt"]
        assert len(prompts) == 1  # one prompt listing every measure
        [prompt] = prompts
        assert prompt.payload["prompt"]["measure"] == "poss-before-dose"
        assert prompt.payload["prompt"]["measures"] == ["poss-before-dose", "reassess-at-peak"]
        assert prompt.payload["prompt"]["day"] == "2026-12-07"
        assert prompt.priority == Priority.BULK
        first = row(s, team_id, "daily:2026-12-07:poss-before-dose")
        assert prompt.dedupe_key == f"agenda:{first.id}:p{reporter.id}:daily_prompt"
        text = prompt.message.text
        assert "7 de diciembre" in text  # Spanish date label
        assert "1) POSS antes de la dosis" in text and "2) POSS en el pico" in text
        assert "7/9" in text
        second = row(s, team_id, "daily:2026-12-07:reassess-at-peak")
        assert second.state == "done" and f"row {first.id}" in second.note
        # Members and the key contact are not asked for data; the reporter is.
        member = people(s, team, Role.MEMBER.value)[0]
        assert outbox(s, person_id=member.id) == []
        assert row(s, team_id, "daily:2026-12-07:poss-before-dose").state == "done"


def test_a_second_tick_sends_nothing_again(ctx) -> None:
    setup_team(ctx)
    first = dispatch(ctx, ny(START, 18, 1))
    assert first.sent > 0
    second = dispatch(ctx, ny(START, 18, 2))
    assert second.sent == 0 and second.claimed == 0 and second.compiled == 0


def test_stale_rows_are_skipped_not_sent_late(ctx) -> None:
    """The scheduler was down for a day: yesterday's prompt is skipped, today's goes."""
    _, team_id = setup_team(ctx)
    # Tuesday 8 December 18:30: Monday's 18:00 prompt is 24.5 h late (grace 2 h).
    report = dispatch(ctx, ny(date(2026, 12, 8), 18, 30))
    with ctx.db.transaction() as s:
        monday = row(s, team_id, "daily:2026-12-07:poss-before-dose")
        tuesday = row(s, team_id, "daily:2026-12-08:poss-before-dose")
        assert monday.state == "skipped" and "stale" in monday.note
        assert tuesday.state == "done"
        days = {o.payload["prompt"]["day"] for o in outbox(s) if "prompt" in o.payload}
        assert days == {"2026-12-08"}
        # Session 1 (Monday) reminder and follow-up were stale too.
        assert row(s, team_id, "session:1:reminder").state == "skipped"
    assert report.skipped > 0


def test_a_process_killed_between_claim_and_send_loses_and_doubles_nothing(ctx) -> None:
    _, team_id = setup_team(ctx)
    due = ny(START, 18, 0)
    with ctx.db.transaction() as s:
        sync_team(s, s.get(Team, team_id))
    # A worker claims the 18:00 prompts, then dies before running them.
    with ctx.db.transaction() as s:
        claimed, _ = claim_due(s, due, worker="dead-worker")
    assert claimed
    # Within the lease the rows belong to the dead worker: nothing is sent.
    soon = dispatch(ctx, due + timedelta(minutes=1))
    assert soon.sent == 0
    with ctx.db.transaction() as s:
        assert outbox(s) == []
    # After the lease (still within the 2-hour grace) they are reclaimed and sent once.
    later = dispatch(ctx, due + CLAIM_LEASE + timedelta(minutes=1))
    assert later.reclaimed == len(claimed)
    with ctx.db.transaction() as s:
        sent = outbox(s)
        assert len(sent) == 1  # one prompt for both measures
        prompt = row(s, team_id, "daily:2026-12-07:poss-before-dose")
        assert prompt.state == "done"
        # Now the worst case: messages were queued but the row was left claimed (as if the
        # process died after queueing); a reclaim must not queue a second copy.
        prompt.state = "claimed"
        prompt.claimed_by = "another-dead-worker"
        prompt.claimed_at = due
    again = dispatch(ctx, due + CLAIM_LEASE + timedelta(minutes=3))
    assert again.reclaimed == 1
    assert again.sent == 0
    with ctx.db.transaction() as s:
        assert len(outbox(s)) == 1
        assert row(s, team_id, "daily:2026-12-07:poss-before-dose").state == "done"


def test_quiet_hours_make_a_step_wait_then_it_goes(ctx) -> None:
    _, team_id = setup_team(ctx)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        team.quiet_start, team.quiet_end = time(17, 30), time(18, 30)
    at_six = dispatch(ctx, ny(START, 18, 0))
    assert at_six.deferred == 2 and at_six.sent == 0
    with ctx.db.transaction() as s:
        waiting = row(s, team_id, "daily:2026-12-07:poss-before-dose")
        assert waiting.state == "pending" and "quiet hours" in waiting.note
        assert outbox(s) == []
    assert dispatch(ctx, ny(START, 18, 20)).sent == 0
    after = dispatch(ctx, ny(START, 18, 30))
    assert after.by_kind.get("daily_prompt") == 1  # both measures in one prompt


def test_quiet_hours_past_the_grace_period_skip_the_step(ctx) -> None:
    _, team_id = setup_team(ctx)
    with ctx.db.transaction() as s:
        s.get(Team, team_id).quiet_start = time(17, 0)
        s.get(Team, team_id).quiet_end = time(22, 0)  # grace ends at 20:00
    report = dispatch(ctx, ny(START, 18, 0))
    assert report.sent == 0
    with ctx.db.transaction() as s:
        prompt = row(s, team_id, "daily:2026-12-07:poss-before-dose")
        assert prompt.state == "skipped" and "quiet hours" in prompt.note
        assert outbox(s) == []


def test_session_reminder_reaches_every_member_with_the_join_link(ctx) -> None:
    _, team_id = setup_team(ctx, members=2)
    report = dispatch(ctx, ny(START, 11, 30))
    # Contact, reporter and 2 members; the leader gets the summaries, not the team's reminders.
    assert report.by_kind == {"session_reminder": 4}
    with ctx.db.transaction() as s:
        texts = [o.message.text for o in outbox(s)]
        assert all("https://meet.example.org/dash" in t for t in texts)
        assert all("12:30" in t for t in texts)
        assert len({o.dedupe_key for o in outbox(s)}) == 4
        leader = people(s, s.get(Team, team_id), Role.LEADER.value)[0]
        assert outbox(s, person_id=leader.id) == []


def test_team_group_chat_gets_one_message_instead_of_each_telegram_member(ctx) -> None:
    _, team_id = setup_team(ctx, members=0, leader=False)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        team.group_channel, team.group_address = "telegram", "-100123"
        add_person(s, team, Role.MEMBER.value, name="Tina", telegram=5551)
    dispatch(ctx, ny(START, 11, 30))
    with ctx.db.transaction() as s:
        rows = outbox(s)
        assert [o.address for o in rows if o.channel == "telegram"] == ["-100123"]
        assert len([o for o in rows if o.channel == "console"]) == 2  # contact and reporter


def test_whatsapp_recipients_get_the_approved_template(ctx) -> None:
    _, team_id = setup_team(ctx, reporters=0)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        add_person(s, team, Role.DATA_REPORTER.value, name="Wanda", whatsapp="+15551230001")
    dispatch(ctx, ny(START, 18, 0))
    with ctx.db.transaction() as s:
        sent = outbox(s, channel="whatsapp")
        assert len(sent) == 1
        template = sent[0].payload["template"]
        assert template["content_sid"].startswith("HX")
        assert set(template["variables"]) == {"1", "2", "3"}
        assert template["variables"]["1"] == s.get(Team, team_id).name
        assert template["variables"]["3"] == "Monday 7 December"


def test_summaries_go_to_the_team_and_its_leader_with_the_chart(ctx) -> None:
    _, team_id = setup_team(ctx)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        sync_team(s, team)
        mid = row(s, team_id, "summary:mid")
        due = mid.due_at
        # Four days of data, so the summary has figures to show.
        cohort = s.get(Cohort, team.cohort_id)
        for i, measure in enumerate(cohort.measures):
            for d in range(4):
                s.add(
                    MeasureValue(
                        team_id=team_id,
                        measure_id=measure.id,
                        day=START + timedelta(days=d),
                        numerator=5 + d + i,
                        denominator=10,
                        channel="console",
                    )
                )
        # Everything before the summary went out already.
        for other in s.execute(
            select(AgendaItem).where(AgendaItem.team_id == team_id, AgendaItem.due_at < due)
        ).scalars():
            other.state = "done"
    dispatch(ctx, due)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        summaries = [o for o in outbox(s) if o.message.kind == "midpoint_summary"]
        recipients = {o.person_id for o in summaries}
        assert team.leader_id in recipients and team.key_contact_id in recipients
        assert all(o.payload["photo"] == {"kind": "chart", "team_id": team_id} for o in summaries)
        text = summaries[0].message.text
        assert "Halfway there" in text
        assert "goal" in text


def test_pdsa_follow_up_the_day_after_the_test_unless_already_reported(ctx) -> None:
    _, team_id = setup_team(ctx)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        creator = people(s, team, Role.MEMBER.value)[0]
        creator_id = creator.id
        for number in (1, 2):
            s.add(
                PdsaCycle(
                    team_id=team_id,
                    number=number,
                    state="planned",
                    change_text=f"Change {number}",
                    prediction="More scores documented",
                    test_date=date(2026, 12, 9),
                    created_by_id=creator_id,
                )
            )
    dispatch(ctx, ny(date(2026, 12, 9), 9, 0))  # rows appear once the plans exist
    with ctx.db.transaction() as s:
        assert row(s, team_id, "pdsa:1:followup").local_day == date(2026, 12, 10)
        # Cycle 2 is reported before its follow-up is due.
        cycle = s.execute(select(PdsaCycle).where(PdsaCycle.number == 2)).scalar_one()
        cycle.state = "done"
    report = dispatch(ctx, ny(date(2026, 12, 10), 14, 0))
    with ctx.db.transaction() as s:
        followups = [o for o in outbox(s) if o.message.kind == "pdsa_followup"]
        assert [o.person_id for o in followups] == [creator_id]
        assert "Change 1" in followups[0].message.text
        assert row(s, team_id, "pdsa:2:followup").state == "done"
        assert "already reported" in row(s, team_id, "pdsa:2:followup").note
    assert report.by_kind["pdsa_followup"] == 1


def test_coach_digest_lists_teams_that_need_attention(ctx) -> None:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        quiet = make_team(s, cohort, name="5 West")
        busy = make_team(s, cohort, name="ICU")
        coach = add_person(s, None, None, name="Coach Ana")
        cohort.coaches.append(coach)
        coach_id = coach.id
        # ICU reported every day; 5 West sent nothing and has a message waiting.
        for measure in cohort.measures:
            for d in range(-3, 2):
                s.add(
                    MeasureValue(
                        team_id=busy.id,
                        measure_id=measure.id,
                        day=START + timedelta(days=d),
                        numerator=3,
                        denominator=4,
                        channel="console",
                    )
                )
        s.add(
            Message(
                team_id=quiet.id,
                direction="in",
                channel="console",
                text="Can we change the measure?",
                status="processed",
                needs_reply=True,
            )
        )
    dispatch(ctx, ny(date(2026, 12, 9), 7, 30))
    with ctx.db.transaction() as s:
        digests = [o for o in outbox(s, person_id=coach_id)]
        assert len(digests) == 1
        text = digests[0].message.text
        assert "5 West" in text and "no data for 5 days" in text
        assert "1 message waiting" in text
        assert "ICU" not in text
        assert "/cohorts/" in text
        assert digests[0].team_id is None


def test_scheduler_service_runs_ticks_in_the_background(ctx) -> None:
    setup_team(ctx)
    import time as clock

    service = SchedulerService(ctx, interval=3600)
    service.start()
    try:
        assert service.running
        for _ in range(200):  # the first beat runs right after start
            if service.last_report is not None:
                break
            clock.sleep(0.05)
        assert not service.is_stuck(utcnow())
        # With no successful tick for ten intervals, /healthz would call it stuck.
        assert service.is_stuck(utcnow() + timedelta(hours=11))
    finally:
        service.shutdown(wait=True)
    assert not service.running
    assert service.last_report is not None and service.last_report.compiled == 1
    with ctx.db.transaction() as s:
        assert s.execute(select(func.count(AgendaItem.id))).scalar_one() > 0


def test_the_first_tick_runs_at_once_whatever_the_clock_says(ctx) -> None:
    """A deployment clock far from the wall clock (an injected one, as in rehearsals and these
    tests) still gets its first beat right after start, a beat a second as the workers run."""
    setup_team(ctx)
    import time as clock

    with use_clock(RunningClock(utcnow() - timedelta(days=365))):
        service = SchedulerService(ctx, interval=1)
        started = clock.monotonic()
        service.start()
        try:
            while service.last_report is None and clock.monotonic() - started < 5:
                clock.sleep(0.05)
            first = service.last_report
        finally:
            service.shutdown(wait=True)
    assert first is not None and first.compiled == 1, "no tick within 5 s of start"


def _cli():
    """The real `dash` command line."""
    from dash.app.cli.main import app

    return app


def _stamp_head(db) -> None:
    from alembic import command

    from dash import migrate

    cfg = migrate.alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def test_dispatch_command_sends_what_is_due_and_reports_it(ctx) -> None:
    from typer.testing import CliRunner

    _stamp_head(ctx.db)  # the tables come from the models (fixtures); mark them current
    _, team_id = setup_team(ctx)
    result = CliRunner().invoke(_cli(), ["dispatch", "--now", "2026-12-07T18:00:00-05:00"])
    assert result.exit_code == 0, result.output
    assert "compiled 1 agenda" in result.output
    assert "daily_prompt 1" in result.output  # one prompt listing both measures
    assert "skipped" in result.output
    with ctx.db.transaction() as s:
        assert row(s, team_id, "daily:2026-12-07:poss-before-dose").state == "done"
        assert row(s, team_id, "session:1:reminder").state == "skipped"  # 11:30 is long gone
        prompts = [o for o in outbox(s) if o.message.kind == "daily_prompt"]
        assert len(prompts) == 1
        # ...and the console channel delivered it.
        assert "delivery: 1 message(s)" in result.output
        assert {o.state for o in prompts} == {"sent"}
    # Running it again for the same instant does nothing more.
    again = CliRunner().invoke(_cli(), ["dispatch", "--now", "2026-12-07T23:00:00Z"])
    assert again.exit_code == 0, again.output
    assert "queued 0 message(s)" in again.output


def test_dispatch_command_rejects_a_time_without_offset(ctx) -> None:
    from typer.testing import CliRunner

    _stamp_head(ctx.db)
    result = CliRunner().invoke(_cli(), ["dispatch", "--now", "2026-12-07T09:00:00"])
    assert result.exit_code == 1
    assert "UTC offset" in result.output
    bad = CliRunner().invoke(_cli(), ["dispatch", "--now", "next tuesday"])
    assert bad.exit_code == 1 and "ISO 8601" in bad.output
    assert CliRunner().invoke(_cli(), ["dispatch"]).exit_code == 2


def test_dispatch_command_refuses_an_uninitialised_database(settings) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(_cli(), ["dispatch", "--now", "2026-12-07T09:00:00Z"])
    assert result.exit_code == 1
    assert "dash init" in result.output
