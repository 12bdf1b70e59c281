"""PDSA by chat: PLAN in four short questions; then Do, Study and Act when asked how it went."""

from __future__ import annotations

from typing import Any

from dash.actions import pdsa as pdsa_actions
from dash.engine.turn import Turn
from dash.models import PdsaCycle, PdsaState, PendingQuestion, Team
from dash.parsing import parse_act, parse_choice, parse_command

#: Shortest useful answer to an open question (a single character is a slip).
MIN_ANSWER = 2
#: Longest answer kept for one plan field.
MAX_ANSWER = 1000


def begin(turn: Turn, team: Team) -> None:
    """PLAN: start (or resume) a cycle and ask its first open question."""
    person = turn.person
    assert person is not None
    cycle = pdsa_actions.start_plan(turn.session, team, person, turn.channel)
    ask_plan_step(turn, cycle, pdsa_actions.next_plan_step(cycle), intro=True)


def ask_plan_step(turn: Turn, cycle: PdsaCycle, step: str, *, intro: bool = False) -> None:
    team = turn.session.get(Team, cycle.team_id)
    assert team is not None
    turn.use_team(team)
    turn.ask("pdsa", step, data={"cycle_id": cycle.id}, team=team)
    context: dict[str, Any] = {
        "number": cycle.number,
        "intro": intro,
        "change": cycle.change_text,
        "adapted": cycle.previous_id is not None,
    }
    payload = None
    if step == "prediction":
        context["example"] = pdsa_actions.example(team, "prediction", turn.lang)
    if step == "change":
        ideas = pdsa_actions.change_ideas(team, turn.lang)
        context["ideas"] = [title for _, title in ideas]
        # An adapted change is asked for in words (or SAME): the menu's buttons would pick
        # another change than the one the team is adapting.
        if ideas and not context["adapted"]:
            payload = {
                "buttons": [
                    [{"text": str(i + 1), "data": f"choice:{i + 1}"} for i in range(len(ideas))]
                ]
            }
    turn.reply(f"pdsa_ask_{step}", payload=payload, **context)


def _cycle(turn: Turn, pending: PendingQuestion) -> PdsaCycle | None:
    cycle = turn.session.get(PdsaCycle, pending.data.get("cycle_id"))
    if cycle is None:
        turn.done()
    return cycle


def _open_answer(turn: Turn) -> str | None:
    text = " ".join(turn.text.split())
    if len(text) < MIN_ANSWER:
        return None
    return text[:MAX_ANSWER]


def answer_plan(turn: Turn, pending: PendingQuestion) -> bool:
    cycle = _cycle(turn, pending)
    if cycle is None or cycle.state != PdsaState.PLANNING.value:
        turn.done()
        return False
    step = pending.step
    team = turn.session.get(Team, cycle.team_id)
    assert team is not None
    if step == "change":
        ideas = pdsa_actions.change_ideas(team, turn.lang)
        menu = ideas and cycle.previous_id is None  # an adapted change offers no menu
        choice = parse_choice(turn.text, turn.callback, len(ideas)) if menu else None
        if choice is not None:
            key, title = ideas[choice - 1]
            pdsa_actions.set_change(turn.session, cycle, text=title, key=key)
        elif cycle.previous_id is not None and turn.text.strip().lower() in (
            "same",
            "igual",
            "mismo",
        ):
            pass  # keep the adapted cycle's change as it was
        else:
            text = _open_answer(turn)
            if text is None:
                turn.fail("pdsa_answer_again", step=step)
                return True
            pdsa_actions.set_change(turn.session, cycle, text=text, key=None)
        ask_plan_step(turn, cycle, "prediction")
        return True
    text = _open_answer(turn)
    if text is None:
        turn.fail("pdsa_answer_again", step=step)
        return True
    complete = pdsa_actions.set_plan_answer(turn.session, cycle, step, text, turn.today(team))
    if complete:
        turn.done()
        turn.reply(
            "pdsa_planned",
            number=cycle.number,
            change=cycle.change_text,
            prediction=cycle.prediction,
            who=cycle.plan_who_where_when,
            measure=cycle.plan_measure,
            test_day=turn.label(cycle.test_date) if cycle.test_date else "",
        )
        return True
    following = pdsa_actions.PLAN_STEPS[pdsa_actions.PLAN_STEPS.index(step) + 1]
    ask_plan_step(turn, cycle, following)
    return True


def answer_followup(turn: Turn, pending: PendingQuestion) -> bool:
    cycle = _cycle(turn, pending)
    if cycle is None or cycle.state not in pdsa_actions.OPEN_STATES:
        turn.done()
        return False
    team = turn.session.get(Team, cycle.team_id)
    assert team is not None
    turn.use_team(team)
    step = pdsa_actions.followup_step(cycle)
    if step == "act":
        act = parse_act(turn.text, turn.callback)
        if act is None:
            text, payload = pdsa_actions.followup_question(cycle, "act", turn.lang)
            turn.fail("pdsa_act_again", payload=payload)
            return True
        pdsa_actions.record_act(turn.session, cycle, act)
        turn.done()
        _after_act(turn, cycle, act)
        return True
    text = _open_answer(turn)
    if text is None:
        turn.fail("pdsa_answer_again", step=step)
        return True
    if step == "do":
        pdsa_actions.record_do(turn.session, cycle, text)
    else:
        pdsa_actions.record_study(turn.session, cycle, text)
    following = pdsa_actions.followup_step(cycle)
    turn.ask("pdsa_follow", following, data={"cycle_id": cycle.id}, team=team)
    question, payload = pdsa_actions.followup_question(cycle, following, turn.lang)
    turn.say(question, payload=payload or None)
    return True


def _after_act(turn: Turn, cycle: PdsaCycle, act: str) -> None:
    team = turn.session.get(Team, cycle.team_id)
    assert team is not None
    person = turn.person
    assert person is not None
    if act == "adopt":
        turn.ask("story", "story", data={"cycle_id": cycle.id}, team=team)
        turn.reply(
            "pdsa_adopted",
            number=cycle.number,
            change=cycle.change_text,
            example=pdsa_actions.example(team, "story", turn.lang),
            shared=team.consent_share,
        )
    elif act == "adapt":
        turn.reply("pdsa_adapted", number=cycle.number)
        following = pdsa_actions.start_plan(
            turn.session, team, person, turn.channel, previous=cycle
        )
        ask_plan_step(turn, following, "change")
    else:
        turn.reply("pdsa_abandoned", number=cycle.number)


def answer_story(turn: Turn, pending: PendingQuestion) -> bool:
    cycle = _cycle(turn, pending)
    if cycle is None:
        return False
    command = parse_command(turn.text)
    if command is not None and command.name in ("skip", "no"):
        turn.done()
        turn.reply("story_skipped")
        return True
    text = _open_answer(turn)
    if text is None:
        turn.fail("story_again")
        return True
    pdsa_actions.set_story(turn.session, cycle, text)
    turn.done()
    team = turn.session.get(Team, cycle.team_id)
    turn.reply("story_saved", shared=bool(team and team.consent_share))
    return True
