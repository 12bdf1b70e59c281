"""Daily counts by chat: prompts answered, corrections, late answers, the running picture."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dash.engine.turn import day_label
from dash.models import Measure, MeasureValue, Team
from dash.queries.data import team_today
from tests.support.engine import KC, Chat, add_prompt, enrol, make_cohort


def _values(ctx, team_id: int, current: bool | None = True) -> list[tuple[str, str, int, int]]:
    with ctx.db.transaction() as s:
        query = (
            select(MeasureValue, Measure.key)
            .join(Measure, Measure.id == MeasureValue.measure_id)
            .where(MeasureValue.team_id == team_id)
            .order_by(MeasureValue.day, MeasureValue.id)
        )
        if current is not None:
            query = query.where(MeasureValue.is_current.is_(current))
        return [
            (v.day.isoformat(), k, v.numerator, v.denominator) for v, k in s.execute(query).all()
        ]


def _today(ctx, team: Team):
    with ctx.db.transaction() as s:
        return team_today(s.get(Team, team.id))


def test_a_week_of_data_with_a_correction_and_a_late_answer(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    key = "poss-before-dose"
    today = _today(ctx, team)
    days = [today - timedelta(days=n) for n in range(6, 0, -1)]
    answers = ["5/10", "6/10", "6/10", "7 of 10", "", "8 out of 10"]
    for day, answer in zip(days, answers, strict=True):
        add_prompt(ctx, team, key, day)
        if answer:
            reply = chat.say(KC, answer)
            assert f"Recorded for {day_label(day, 'en')}" in reply
    assert "= 80%, your best day so far" in reply
    assert "Your median so far:" in reply and "Goal: 90%" in reply

    # A late answer for the skipped day names that day, its month in full: "mar" is Tuesday
    # in Spanish, so "12 mar" is no date (dash.parsing) and "%b" failed whenever it was March.
    skipped = days[4]
    late = chat.say(KC, f"{skipped.day} {skipped.strftime('%B').lower()} 7/10")
    assert f"Recorded for {day_label(skipped, 'en')}" in late

    # A second bare answer is a correction of the latest prompt, and says what it replaced.
    fixed = chat.say(KC, "9/10")
    assert f"Replaced 8/10 with 9/10 for {day_label(days[5], 'en')}" in fixed

    current = _values(ctx, team.id)
    assert [(d, n, den) for d, _, n, den in current] == [
        (days[0].isoformat(), 5, 10),
        (days[1].isoformat(), 6, 10),
        (days[2].isoformat(), 6, 10),
        (days[3].isoformat(), 7, 10),
        (days[4].isoformat(), 7, 10),
        (days[5].isoformat(), 9, 10),
    ]
    # The replaced value is kept as history.
    assert _values(ctx, team.id, current=False) == [(days[5].isoformat(), key, 8, 10)]


def test_an_unanswered_prompt_catches_the_count_before_a_correction(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    today = _today(ctx, team)
    add_prompt(ctx, team, "poss-before-dose", today - timedelta(days=1))
    chat.say(KC, "4/8")
    add_prompt(ctx, team, "poss-before-dose", today)
    assert "Recorded for today" in chat.say(KC, "5/8")
    assert [v[0] for v in _values(ctx, team.id)] == [
        (today - timedelta(days=1)).isoformat(),
        today.isoformat(),
    ]


def test_several_measures_are_answered_in_order_or_by_name(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    today = _today(ctx, team)
    add_prompt(ctx, team, "poss-before-dose", today)
    add_prompt(ctx, team, "reassess-at-peak", today)
    first = chat.say(KC, "7/9")
    assert "POSS" in first and "Next, please:" in first
    second = chat.say(KC, "3/4")
    assert "Next, please" not in second
    chat.say(KC, "reassess 4/4")
    assert sorted((k, n, d) for _, k, n, d in _values(ctx, team.id)) == [
        ("poss-before-dose", 7, 9),
        ("reassess-at-peak", 4, 4),
    ]
    unknown = chat.say(KC, "huddles 3/4")
    assert 'I don\'t know the measure "huddles"' in unknown and "2. Sedation" in unknown


def test_a_count_without_any_prompt_is_todays_primary_measure(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    reply = chat.say(KC, "0/0")
    assert "Recorded for today" in reply and "no eligible patients" in reply
    assert _values(ctx, team.id) == [(_today(ctx, team).isoformat(), "poss-before-dose", 0, 0)]


def test_a_real_shift_is_named_in_plain_words(ctx) -> None:
    chat = Chat(ctx)
    team = enrol(chat, make_cohort(ctx))
    today = _today(ctx, team)
    counts = ["3/10"] * 6 + ["9/10"] * 5
    for n, count in enumerate(counts):
        day = today - timedelta(days=len(counts) - n)
        chat.say(KC, f"{day.isoformat()} {count}")
    reply = chat.say(KC, f"{today.isoformat()} 9/10")
    assert "6 days in a row better than your median: a real shift, not chance." in reply
