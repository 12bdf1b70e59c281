"""An enrolled team starts with an explicit aim: how much, by when, for whom."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from dash.actions.cohorts import create_cohort
from dash.actions.enrolment import record_signoff, set_leader, start_team, submit_matrix
from dash.models import Aim
from tests.support.people import reachable

SCORES = dict(importance=5, influence=4, project_length=4, expense=3, frequency=5)


def _awaiting_signoff(s, topic: str = "opioid-safety"):
    cohort = create_cohort(s, topic=topic, start=date(2026, 12, 7), timezone="America/New_York")
    contact = reachable(name="Kim", console="kim", language="en")
    leader = reachable(name="Lee", console="lee", language="en")
    s.add_all([contact, leader])
    s.flush()
    team = start_team(s, cohort=cohort, key_contact=contact, organisation="St Mary's", unit="5 West")
    submit_matrix(s, team=team, scores=SCORES, by=contact, via="console")
    set_leader(s, team=team, leader=leader)
    return team, leader


def test_approval_writes_the_aim_from_the_curriculum(db) -> None:
    with db.transaction() as s:
        team, leader = _awaiting_signoff(s)
        assert s.execute(select(Aim).where(Aim.team_id == team.id)).first() is None
        record_signoff(
            s, team=team, decision="approved", leader_name="Lee", leader_role="CNO",
            comment="", via="console", leader=leader,
        )
        aim = s.execute(select(Aim).where(Aim.team_id == team.id)).scalar_one()
        assert aim.goal == 0.9
        assert aim.target_date == date(2026, 12, 20)  # the Dash's last day
        assert "5 West" in aim.text and "90%" in aim.text and "20 December" in aim.text


def test_a_declined_team_has_no_aim(db) -> None:
    with db.transaction() as s:
        team, leader = _awaiting_signoff(s)
        record_signoff(
            s, team=team, decision="declined", leader_name="Lee", leader_role="CNO",
            comment="Not this quarter", via="console", leader=leader,
        )
        assert s.execute(select(Aim).where(Aim.team_id == team.id)).first() is None
