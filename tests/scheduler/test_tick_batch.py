"""Daily prompts due at one instant are rendered and queued as a batch: the same messages as
row by row, a bounded number of statements, and one bad row never blocks the rest."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from dash.dbplans import StatementCounter
from dash.models import AgendaItem, Cohort, OutboxItem, Person, Role, Team
from dash.timeutil import utcnow
from scheduler.tick import dispatch
from tests.support.agenda import START, ny, outbox, people, report_data, row
from tests.support.teams import add_person, make_cohort, make_team

DAY = "2026-12-07"


def setup_teams(ctx, n: int, **kwargs) -> list[int]:
    with ctx.db.transaction() as s:
        cohort = make_cohort(s)
        return [make_team(s, cohort, **kwargs).id for _ in range(n)]


def prompts_to(s, person: Person) -> list[OutboxItem]:
    return [o for o in outbox(s, person_id=person.id) if o.message.kind == "daily_prompt"]


def test_many_teams_each_reporter_gets_each_prompt_once_in_their_language(ctx) -> None:
    team_ids = setup_teams(ctx, 6)
    with ctx.db.transaction() as s:
        # Team 1 already reported one measure today; team 2's reporter stopped messages;
        # team 3 reads a Telegram group; team 4's reporter reads Spanish.
        report_data(s, team_ids[1], date(2026, 12, 7), measures=1)
        reported = s.get(Cohort, s.get(Team, team_ids[1]).cohort_id).measures[0].key
        people(s, s.get(Team, team_ids[2]), Role.DATA_REPORTER.value)[0].opted_out_at = utcnow()
        t3 = s.get(Team, team_ids[3])
        t3.group_channel, t3.group_address = "telegram", "-100777"
        add_person(s, t3, Role.MEMBER.value, name="Tom", telegram=881)
        people(s, s.get(Team, team_ids[4]), Role.DATA_REPORTER.value)[0].language = "es"
    report = dispatch(ctx, ny(START, 18, 1))
    assert report.failed == 0
    with ctx.db.transaction() as s:
        for index, team_id in enumerate(team_ids):
            team = s.get(Team, team_id)
            reporter = people(s, team, Role.DATA_REPORTER.value) or [None]
            if index == 2:
                opted = s.execute(
                    select(Person).where(
                        Person.name.like("Rita%"), Person.opted_out_at.is_not(None)
                    )
                ).scalar_one()
                assert prompts_to(s, opted) == []
                continue
            got = prompts_to(s, reporter[0])
            expected = {"poss-before-dose", "reassess-at-peak"} - (
                {reported} if index == 1 else set()
            )
            assert len(got) == 1  # one prompt a day listing every measure still open
            assert set(got[0].payload["prompt"]["measures"]) == expected
            for o in got:
                agenda_row = row(s, team_id, f"daily:{DAY}:{o.payload['prompt']['measure']}")
                assert o.dedupe_key == f"agenda:{agenda_row.id}:p{reporter[0].id}:daily_prompt"
            if index == 4:
                assert all("7 de diciembre" in o.message.text for o in got)
            else:
                assert all("Monday 7 December" in o.message.text for o in got)
            # Nobody else on the team is asked for data.
            member = people(s, team, Role.MEMBER.value)[0]
            assert outbox(s, person_id=member.id) == []
        group = outbox(s, address="-100777")
        assert len(group) == 1 and all(o.person_id is None for o in group)
        assert row(s, team_ids[1], f"daily:{DAY}:{reported}").note == (
            "data already in; no prompt needed"
        )
        # Team 2's only reporter stopped messages: the key contact is asked instead.
        contact = people(s, s.get(Team, team_ids[2]), Role.KEY_CONTACT.value)[0]
        assert len(prompts_to(s, contact)) == 1
        states = set(
            s.execute(
                select(AgendaItem.state).where(
                    AgendaItem.kind == "daily_prompt", AgendaItem.local_day == date(2026, 12, 7)
                )
            ).scalars()
        )
        assert states == {"done"}
    assert dispatch(ctx, ny(START, 18, 2)).sent == 0  # nothing twice


def test_a_bad_row_in_a_batch_is_skipped_and_the_others_still_go(ctx) -> None:
    team_ids = setup_teams(ctx, 3)
    dispatch(ctx, ny(START, 8, 0))  # compiles the agendas; nothing due yet
    with ctx.db.transaction() as s:
        broken = row(s, team_ids[1], f"daily:{DAY}:poss-before-dose")
        broken.payload = {"measure": "poss-before-dose"}  # no day: its renderer raises
        broken_id = broken.id
    report = dispatch(ctx, ny(START, 18, 1))
    assert report.failed == 1
    with ctx.db.transaction() as s:
        broken = s.get(AgendaItem, broken_id)
        assert broken.state == "skipped" and broken.note.startswith("failed: KeyError")
        assert len(outbox(s)) == 3  # one prompt per team: the broken row's measure goes too
        for team_id in team_ids:
            reporter = people(s, s.get(Team, team_id), Role.DATA_REPORTER.value)[0]
            [prompt] = prompts_to(s, reporter)
            assert len(prompt.payload["prompt"]["measures"]) == 2


def test_statements_per_prompt_do_not_grow_with_the_number_of_teams(ctx) -> None:
    """Load-independent guard for issue 7: row by row this was ~10 statements per prompt."""

    def statements_for(n: int) -> tuple[int, int]:
        setup_teams(ctx, n)
        dispatch(ctx, ny(START, 8, 0))  # compile first: not part of the fan-out
        with StatementCounter(ctx.db.engine) as counter:
            report = dispatch(ctx, ny(START, 18, 1))
        return counter.count, report.sent

    statements, sent = statements_for(40)
    assert sent == 40  # one prompt per reporter listing both measures (80 agenda rows)
    assert statements < sent  # under one statement per prompt (the batch is 100 rows)
