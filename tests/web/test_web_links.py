"""The key contact's matrix and the leader's sign-off through signed, single-use web links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dash.actions.enrolment import start_team, submit_matrix
from dash.links import make_token
from dash.models import OutboxItem, PriorityMatrix, SignOff, Team
from dash.models.teams import TeamState
from dash.timeutil import use_clock, utcnow
from tests.support import web as w

SCORES = {"importance": 5, "influence": 4, "project_length": 4, "expense": 3, "frequency": 5}
LEADER = {"leader_name": "Lee Leader", "leader_contact": "+1 202 555 0123"}


@pytest.fixture
def enrolling(ctx):
    """A unit whose key contact (console 'kc') has started enrolment; no matrix yet."""
    with ctx.db.transaction() as s:
        cohort = w.cohort(s)
        contact = w.nurse(s, "Kim Contact", "kc")
        team = start_team(
            s, cohort=cohort, key_contact=contact, organisation="St Elsewhere", unit="5 West"
        )
        team_id = team.id
    return ctx, team_id


def matrix_link(ctx, team_id):
    return "/matrix/" + make_token(ctx.secret, "matrix", team_id)


def signoff_link(ctx, team_id):
    return "/signoff/" + make_token(ctx.secret, "signoff", team_id)


def fill(client, link, data):
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(link, data={**data, "csrf": w.csrf_of(page.text)})


def test_key_contact_scores_the_matrix_once(enrolling):
    ctx, team_id = enrolling
    link = matrix_link(ctx, team_id)
    client = w.client_for(ctx)
    page = client.get(link)
    assert "Priority matrix" in page.text and "Opioid" in page.text
    assert page.text.count('type="radio"') == 25
    done = fill(client, link, {**{k: str(v) for k, v in SCORES.items()}, **LEADER})
    assert done.status_code == 200
    assert "21</strong> out of 25" in done.text
    assert "/signoff/" in done.text  # the leader's link to pass on
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.state == TeamState.AWAITING_SIGNOFF.value
        matrix = s.execute(select(PriorityMatrix)).scalar_one()
        assert (matrix.total, matrix.via, matrix.revision) == (21, "web", 1)
    again = w.client_for(ctx).get(link)
    assert "already" in again.text
    assert 'type="radio"' not in again.text


def test_a_matrix_with_a_missing_score_is_refused_and_nothing_recorded(enrolling):
    ctx, team_id = enrolling
    client = w.client_for(ctx)
    scores = {k: str(v) for k, v in SCORES.items()}
    scores["expense"] = "9"
    del scores["frequency"]
    refused = fill(client, matrix_link(ctx, team_id), scores)
    assert refused.status_code == 400
    assert (
        "Expense of the issue prevented" in refused.text
        and "Frequency of occurrence" in refused.text
    )
    assert 'value="5" required checked' in refused.text  # what was chosen stays chosen
    with ctx.db.transaction() as s:
        assert s.execute(select(PriorityMatrix)).first() is None
        assert s.get(Team, team_id).state == TeamState.AWAITING_MATRIX.value


@pytest.fixture
def awaiting_signoff(enrolling):
    ctx, team_id = enrolling
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        submit_matrix(s, team=team, scores=SCORES, by=team.key_contact, via="console")
    return ctx, team_id


def test_leader_approves_through_the_link_and_the_team_is_enrolled(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    link = signoff_link(ctx, team_id)
    client = w.client_for(ctx)
    page = client.get(link)
    assert "Kim Contact" in page.text and "21</strong> / 25" in page.text
    done = fill(
        client,
        link,
        {
            "decision": "approved",
            "name": "Lee Leader",
            "role": "Nurse manager",
            "comment": "Go <b>ahead</b>",
            "contact": "lee@example.org",
        },
    )
    assert done.status_code == 200 and "Approved" in done.text
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.state == TeamState.ENROLLED.value and team.join_code
        signoff = s.execute(select(SignOff)).scalar_one()
        assert (signoff.leader_name, signoff.leader_role, signoff.via) == (
            "Lee Leader",
            "Nurse manager",
            "web",
        )
        told = s.execute(select(OutboxItem).where(OutboxItem.address == "kc")).scalars().all()
        assert any(team.join_code in item.message.text for item in told)
    reused = w.client_for(ctx).get(link)
    assert "already decided" in reused.text and "approved" in reused.text
    assert 'name="decision"' not in reused.text


def test_leader_declines_and_the_key_contact_is_told(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    done = fill(
        w.client_for(ctx),
        signoff_link(ctx, team_id),
        {
            "decision": "declined",
            "name": "Lee Leader",
            "role": "CNO",
            "comment": "Not this quarter",
            "contact": "lee@example.org",
        },
    )
    assert "Declined" in done.text
    with ctx.db.transaction() as s:
        assert s.get(Team, team_id).state == TeamState.DECLINED.value
        assert s.execute(select(OutboxItem).where(OutboxItem.address == "kc")).first() is not None


def test_a_sign_off_without_name_or_decision_is_refused(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    refused = fill(w.client_for(ctx), signoff_link(ctx, team_id), {"name": "", "role": "CNO"})
    assert refused.status_code == 400
    assert "Choose approve or decline." in refused.text and "Write your name" in refused.text
    with ctx.db.transaction() as s:
        assert s.execute(select(SignOff)).first() is None
        assert s.get(Team, team_id).state == TeamState.AWAITING_SIGNOFF.value


def test_an_expired_sign_off_link_says_so_clearly(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    link = signoff_link(ctx, team_id)
    later = utcnow() + timedelta(hours=ctx.settings.link_ttl_hours + 1)
    with use_clock(lambda: later):
        page = w.client_for(ctx).get(link)
    assert page.status_code == 410
    assert "expired" in page.text and 'name="decision"' not in page.text


def test_a_matrix_link_does_not_open_the_sign_off(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    page = w.client_for(ctx).get("/signoff/" + make_token(ctx.secret, "matrix", team_id))
    assert page.status_code == 410 and "not valid" in page.text


def test_a_decision_made_by_chat_closes_the_web_form(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    link = signoff_link(ctx, team_id)
    client = w.client_for(ctx)
    page = client.get(link)
    from dash.actions.enrolment import record_signoff

    with ctx.db.transaction() as s:
        leader = w.nurse(s, "Lee", "lee")
        record_signoff(
            s,
            team=s.get(Team, team_id),
            decision="approved",
            leader_name="Lee",
            leader_role="",
            comment="",
            via="console",
            leader=leader,
        )
    late = client.post(
        link,
        data={"decision": "declined", "name": "Lee", "role": "CNO", "csrf": w.csrf_of(page.text)},
    )
    assert "already decided" in late.text
    with ctx.db.transaction() as s:
        assert s.get(Team, team_id).state == TeamState.ENROLLED.value
        assert len(s.execute(select(SignOff)).all()) == 1


def test_a_web_enrolment_names_a_leader_who_is_on_record_once_enrolled(enrolling):
    """A unit enrolled on the web has a leader on record (summaries and escalations reach
    them): the matrix form asks who signs off, and refuses the key contact or no one."""
    ctx, team_id = enrolling
    link = matrix_link(ctx, team_id)
    client = w.client_for(ctx)
    scores = {k: str(v) for k, v in SCORES.items()}
    missing = fill(client, link, scores)
    assert missing.status_code == 400 and "name of the leader" in missing.text
    bad = fill(client, link, {**scores, "leader_name": "Lee", "leader_contact": "12"})
    assert bad.status_code == 400 and "country code" in bad.text
    with ctx.db.transaction() as s:
        assert s.get(Team, team_id).leader_id is None
        assert s.execute(select(PriorityMatrix)).first() is None
    done = fill(client, link, {**scores, **LEADER})
    assert done.status_code == 200 and "Lee Leader" in done.text
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.leader is not None and team.leader.name == "Lee Leader"
        asked = s.execute(select(OutboxItem).where(OutboxItem.address == "+12025550123"))
        assert any("sign off" in item.message.text for item in asked.scalars())
    approved = fill(
        w.client_for(ctx),
        signoff_link(ctx, team_id),
        {"decision": "approved", "name": "Lee Leader", "role": "Nurse manager"},
    )
    assert approved.status_code == 200
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.state == TeamState.ENROLLED.value
        roles = {(m.person_id, m.role) for m in team.memberships}
        assert (team.leader_id, "leader") in roles


def test_a_signoff_link_for_a_team_without_a_leader_records_the_signer(awaiting_signoff):
    ctx, team_id = awaiting_signoff
    link = signoff_link(ctx, team_id)
    data = {"decision": "approved", "name": "Lee Leader", "role": "Nurse manager"}
    refused = fill(w.client_for(ctx), link, data)
    assert refused.status_code == 400 and "country code" in refused.text
    with ctx.db.transaction() as s:
        assert s.get(Team, team_id).state == TeamState.AWAITING_SIGNOFF.value
    fill(w.client_for(ctx), link, {**data, "contact": "+1 202 555 0123"})
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.state == TeamState.ENROLLED.value
        assert team.leader is not None and team.leader.name == "Lee Leader"
