"""A key contact who signs off their own unit waits for a coach: the confirmation is on Today."""

from __future__ import annotations

import re

from sqlalchemy import select

from dash.actions.enrolment import record_signoff, set_leader, start_team, submit_matrix
from dash.models import OutboxItem, Team
from dash.models.teams import TeamState
from tests.support import web as w

SCORES = {"importance": 5, "influence": 4, "project_length": 4, "expense": 3, "frequency": 5}


def _self_signed(ctx) -> int:
    """A unit whose key contact named themselves leader and approved it."""
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        contact = w.nurse(s, "Kim Contact", "kc")
        team = start_team(
            s, cohort=cohort, key_contact=contact, organisation="St Elsewhere", unit="5 West"
        )
        set_leader(s, team=team, leader=contact)
        submit_matrix(s, team=team, scores=SCORES, by=contact, via="console")
        record_signoff(
            s,
            team=team,
            decision="approved",
            leader_name="Kim Contact",
            leader_role="Charge nurse",
            comment="",
            via="console",
            leader=contact,
        )
        w.coach(s, "coach@example.org", cohorts=[cohort])
        w.coach(s, "other@example.org", cohorts=[w.cohort(s, name="Other cohort")])
        return team.id


def _state(ctx, team_id: int) -> str:
    with ctx.db.transaction() as s:
        return s.get(Team, team_id).state


def test_a_self_signoff_waits_on_today_until_a_coach_confirms_it(ctx) -> None:
    team_id = _self_signed(ctx)
    assert _state(ctx, team_id) == TeamState.AWAITING_SIGNOFF.value
    client = w.client_for(ctx)
    w.login(client, "coach@example.org")
    today = client.get("/").text
    assert "Kim Contact signed off their own unit" in today
    assert f'action="/teams/{team_id}/signoff/confirm"' in today
    assert "Waiting for the leader" not in today

    # Without the page's CSRF token the button does nothing.
    forged = client.post(f"/teams/{team_id}/signoff/confirm", data={"csrf": "forged"})
    assert forged.status_code in (400, 403)
    assert _state(ctx, team_id) == TeamState.AWAITING_SIGNOFF.value

    done = w.post(client, f"/teams/{team_id}/signoff/confirm", {})
    assert done.status_code == 303
    assert _state(ctx, team_id) == TeamState.ENROLLED.value
    after = client.get("/").text
    assert "is enrolled: sign-off confirmed" in after
    assert "signed off their own unit" not in after
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        told = s.execute(select(OutboxItem).where(OutboxItem.address == "kc")).scalars().all()
        assert any(team.join_code in item.message.text for item in told)
        assert any("a coach will confirm" in item.message.text for item in told)


def test_a_coach_of_another_cohort_cannot_confirm(ctx) -> None:
    team_id = _self_signed(ctx)
    client = w.client_for(ctx)
    w.login(client, "other@example.org")
    assert "signed off their own unit" not in client.get("/").text
    refused = w.post(client, f"/teams/{team_id}/signoff/confirm", {})
    assert refused.status_code == 404
    assert _state(ctx, team_id) == TeamState.AWAITING_SIGNOFF.value


def test_a_leaders_own_signoff_needs_no_coach(ctx) -> None:
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        contact = w.nurse(s, "Kim Contact", "kc")
        leader = w.nurse(s, "Lee Leader", "lee")
        team = start_team(
            s, cohort=cohort, key_contact=contact, organisation="St Elsewhere", unit="5 West"
        )
        set_leader(s, team=team, leader=leader)
        submit_matrix(s, team=team, scores=SCORES, by=contact, via="console")
        record_signoff(
            s,
            team=team,
            decision="approved",
            leader_name="Lee Leader",
            leader_role="CNO",
            comment="",
            via="console",
            leader=leader,
        )
        w.coach(s, "coach@example.org", cohorts=[cohort])
        team_id = team.id
    assert _state(ctx, team_id) == TeamState.ENROLLED.value
    client = w.client_for(ctx)
    w.login(client, "coach@example.org")
    assert not re.search(r"signoff/confirm", client.get("/").text)
