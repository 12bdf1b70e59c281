"""Daily counts as a nurse reads the confirmation: in her language, and honest about repeats."""

from __future__ import annotations

from dash.engine.turn import day_label
from dash.models import Team
from dash.queries.data import team_today
from tests.support.engine import KC, Chat, add_prompt, enrol, make_cohort


def _today(ctx, team: Team):
    with ctx.db.transaction() as s:
        return team_today(s.get(Team, team.id))


def test_a_spanish_speaker_reads_the_measure_names_in_spanish(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    today = _today(ctx, team)
    add_prompt(ctx, team, "poss-before-dose", today)
    add_prompt(ctx, team, "reassess-at-peak", today)
    chat.say(KC, "LANG es")
    reply = chat.say(KC, "7/9")
    assert "(POSS registrada antes de las dosis de opioide)" in reply
    assert "Ahora, por favor: Sedación reevaluada en el pico de efecto" in reply
    assert "documented" not in reply and "rechecked" not in reply


def test_sending_the_same_count_twice_says_nothing_changed(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    label = day_label(_today(ctx, team), "en")
    chat.say(KC, "8/9")
    again = chat.say(KC, "8 of 9")
    assert again.startswith(f"Already recorded: 8/9 for {label} (POSS")
    assert "Nothing changed." in again
    assert "Replaced" not in again
    fixed = chat.say(KC, "7/9")
    assert fixed.startswith(f"Replaced 8/9 with 7/9 for {label}")
    chat.say(KC, "LANG es")
    assert chat.say(KC, "7/9").startswith("Ya estaba registrado: 7/9 del ")
