"""A coach or admin repairs a stuck enrolment (issue 18, section 1): the actions the dashboard
calls, observed as the key contact and the leader would see them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dash.actions.enrolment import (
    edit_matrix,
    restart_enrolment,
    resume_enrolment,
    set_leader_contact,
)
from dash.actions.people import clear_pending
from dash.errors import UserError
from dash.models import Person, Team
from dash.queries.enrolment import enrolment_stage
from tests.support.engine import KC, LEADER, Chat, enrol, make_cohort
from tests.support.people import person_at

SCORES = {"importance": 5, "influence": 4, "project_length": 3, "expense": 4, "frequency": 5}


def _start(chat: Chat, *, scores: int) -> None:
    """The key contact enrols 5 West and gives the first `scores` matrix scores."""
    cohort = make_cohort(chat.ctx)
    for line in (f"JOIN {cohort.enrolment_code}", "Maria Lopez", "St Mary's", "5 West"):
        chat.say(KC, line)
    for score in ["5", "4", "3", "4", "5"][:scores]:
        chat.say(KC, score)


def _team(s) -> Team:
    return s.execute(select(Team)).scalar_one()


def _dead_end(chat: Chat) -> None:
    """What issue 18 found: scores in, no leader named, and no question open any more."""
    _start(chat, scores=5)
    chat.text(KC)
    with chat.ctx.db.transaction() as s:
        clear_pending(s, person_at(s, "console", KC))
        assert enrolment_stage(_team(s)) == "leader"


def test_resume_asks_the_key_contact_for_the_missing_leader(ctx) -> None:
    chat = Chat(ctx)
    _dead_end(chat)
    with ctx.db.transaction() as s:
        assert resume_enrolment(s, _team(s), None) == "leader_name"
    asked = chat.text(KC)
    assert "picked up the enrolment" in asked and "Who is the leader" in asked
    assert "How do I reach Ana Ruiz" in chat.say(KC, "Ana Ruiz, Chief Nursing Officer")
    chat.say(KC, LEADER)
    assert "sign off" in chat.text(LEADER).lower()


def test_resume_keeps_the_scores_already_given(ctx) -> None:
    chat = Chat(ctx)
    _start(chat, scores=2)
    chat.text(KC)
    with ctx.db.transaction() as s:
        assert resume_enrolment(s, _team(s), None) == "score:project_length"
    assert "3/5" in chat.text(KC)
    for score in ("3", "4", "5"):
        chat.say(KC, score)
    with ctx.db.transaction() as s:
        assert enrolment_stage(_team(s)) == "leader"


def test_resume_while_the_leader_is_asked_sends_the_request_again(ctx) -> None:
    chat = Chat(ctx)
    _start(chat, scores=5)
    chat.say(KC, "Ana Ruiz, CNO")
    chat.say(KC, LEADER)
    chat.text(LEADER)
    with ctx.db.transaction() as s:
        assert resume_enrolment(s, _team(s), None) == "signoff"
    assert "YES" in chat.text(LEADER)


def test_restart_starts_the_matrix_over_and_forgets_the_leader(ctx) -> None:
    chat = Chat(ctx)
    _start(chat, scores=5)
    chat.say(KC, "Ana Ruiz, CNO")
    chat.say(KC, LEADER)
    with ctx.db.transaction() as s:
        assert restart_enrolment(s, _team(s), None) == "score:importance"
        team = _team(s)
        assert team.leader_id is None and enrolment_stage(team) == "matrix"
    assert "1/5" in chat.text(KC)
    # The former leader's YES no longer enrols anything.
    chat.text(LEADER)
    chat.say(LEADER, "YES")
    with ctx.db.transaction() as s:
        assert _team(s).state == "awaiting_matrix"


def test_set_leader_contact_asks_the_leader_and_closes_the_question(ctx) -> None:
    chat = Chat(ctx)
    _dead_end(chat)
    with ctx.db.transaction() as s:
        leader, reached = set_leader_contact(
            s, _team(s), None, name="Ana Ruiz", contact="+1 201 555 0123", role="CNO"
        )
        assert reached and leader.name == "Ana Ruiz"
    with ctx.db.transaction() as s:
        person = s.execute(select(Person).where(Person.name == "Ana Ruiz")).scalar_one()
        assert [a.address for a in person.addresses] == ["+12015550123"]
    chat.say("+12015550123", "YES")
    with ctx.db.transaction() as s:
        assert _team(s).state == "enrolled"


def test_set_leader_contact_refuses_a_number_saying_why(ctx) -> None:
    chat = Chat(ctx)
    _dead_end(chat)
    with ctx.db.transaction() as s, pytest.raises(UserError, match="not a number in use"):
        set_leader_contact(s, _team(s), None, name="Ana", contact="+1 555 123 0009")
    with ctx.db.transaction() as s, pytest.raises(UserError, match="too short"):
        set_leader_contact(s, _team(s), None, name="Ana", contact="+1 201 555 01")


def test_edit_matrix_enters_the_scores_and_asks_for_the_leader(ctx) -> None:
    chat = Chat(ctx)
    _start(chat, scores=1)
    chat.text(KC)
    with ctx.db.transaction() as s:
        matrix = edit_matrix(s, _team(s), None, SCORES)
        assert matrix.total == 21
    assert "Who is the leader" in chat.text(KC)
    assert "How do I reach" in chat.say(KC, "Ana Ruiz, CNO")


def test_an_enrolled_team_is_not_resumed_or_restarted(ctx) -> None:
    team = enrol(Chat(ctx), make_cohort(ctx))
    with ctx.db.transaction() as s:
        row = s.get(Team, team.id)
        with pytest.raises(UserError):
            resume_enrolment(s, row, None)
        with pytest.raises(UserError):
            restart_enrolment(s, row, None)
