"""PDSA by chat: PLAN's four questions, then Do, Study and Act when the team reports back."""

from __future__ import annotations

from sqlalchemy import select

from dash.actions.pdsa import ask_followup, start_plan
from dash.models import PdsaCycle, Team
from tests.support.engine import KC, Chat, enrol, make_cohort
from tests.support.people import person_at


def _cycles(ctx, team_id: int) -> list[PdsaCycle]:
    with ctx.db.transaction() as s:
        rows = list(
            s.execute(
                select(PdsaCycle).where(PdsaCycle.team_id == team_id).order_by(PdsaCycle.number)
            ).scalars()
        )
        for row in rows:
            s.expunge(row)
        return rows


def test_a_full_cycle_plan_do_study_act_and_a_story(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    first = chat.replies(KC)
    assert first == []
    chat.send(KC, "PLAN")
    ask = chat.replies(KC)[-1]
    assert (
        "Let's plan test 1" in ask.text and "1. A POSS score before every opioid dose" in ask.text
    )
    assert ask.payload["buttons"][0][0] == {"text": "1", "data": "choice:1"}
    assert "2/4" in chat.say(KC, "1")
    # A prediction that looks like a count is the answer to the question, not data.
    assert "3/4" in chat.say(KC, "8 of 10")
    assert "4/4" in chat.say(KC, "Sam, night shift, tomorrow")
    planned = chat.say(KC, "POSS documented before each dose on the MAR")
    assert "Test 1 is planned" in planned and "Prediction: 8 of 10" in planned
    (cycle,) = _cycles(ctx, team.id)
    assert cycle.state == "planned" and cycle.change_key == "poss-every-dose"
    assert cycle.test_date is not None

    # The scheduler asks the day after the test.
    with ctx.db.transaction() as s:
        question = ask_followup(s, s.get(PdsaCycle, cycle.id))
    assert "How did test 1 go?" in question
    study = chat.say(KC, "Worked on 7 of 9 doses; two were missed at handover")
    assert "You predicted: 8 of 10" in study
    chat.send(KC, "Close to the prediction; handover is the gap")
    act = chat.replies(KC)[-1]
    assert "Adopt" in act.text and act.payload["buttons"][0][0]["data"] == "act:adopt"
    adopted = chat.say(KC, "adopt", callback_data="act:adopt")
    assert "adopted" in adopted and "SKIP" in adopted
    saved = chat.say(KC, "POSS before every dose: 9 of 10 by day 3")
    assert "story saved" in saved and "only if your team agrees" in saved
    (cycle,) = _cycles(ctx, team.id)
    assert (cycle.state, cycle.act) == ("acted", "adopt")
    assert cycle.do_notes.startswith("Worked on 7 of 9")
    assert cycle.study_notes.startswith("Close to the prediction")
    assert cycle.story == "POSS before every dose: 9 of 10 by day 3"
    assert cycle.story_shared_at is None


def test_adapt_starts_the_next_cycle_prefilled(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    for line in (
        "PLAN",
        "Huddle card at the med cart",
        "Half the doses",
        "Me, today",
        "count cards",
    ):
        chat.say(KC, line)
    (cycle,) = _cycles(ctx, team.id)
    with ctx.db.transaction() as s:
        ask_followup(s, s.get(PdsaCycle, cycle.id))
    chat.say(KC, "Cards got lost")
    chat.say(KC, "Fewer than predicted")
    adapted = chat.say(KC, "2")
    assert "Adapting test 1" in adapted and 'Last time: "Huddle card at the med cart"' in adapted
    chat.say(KC, "same")
    cycles = _cycles(ctx, team.id)
    assert [c.number for c in cycles] == [1, 2]
    assert cycles[1].previous_id == cycles[0].id
    assert cycles[1].change_text == "Huddle card at the med cart"
    assert cycles[0].act == "adapt"


def test_start_plan_for_the_scheduler_and_bad_act_answers(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    with ctx.db.transaction() as s:
        kc = person_at(s, "console", KC)
        cycle = start_plan(s, s.get(Team, team.id), kc, "console")
        assert cycle.number == 1
    assert "2/4" in chat.say(KC, "Sticker on the MAR")
    for line in ("More scores", "Me tomorrow", "stickers"):
        chat.say(KC, line)
    with ctx.db.transaction() as s:
        ask_followup(s, s.get(PdsaCycle, cycle.id))
    chat.say(KC, "It went fine")
    chat.say(KC, "As predicted")
    assert "Please reply 1 (adopt)" in chat.say(KC, "maybe")
    assert "coach will see" in chat.say(KC, "dunno")
    (row,) = _cycles(ctx, team.id)
    assert row.state == "studied" and row.act is None
