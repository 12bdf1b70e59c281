"""Daily counts by chat: record the answer, confirm it with the running picture."""

from __future__ import annotations

from dash.actions import data as data_actions
from dash.chartdata import measure_name
from dash.engine.identity import choose_team
from dash.engine.turn import Turn
from dash.errors import UserError
from dash.parsing import BadFraction, Fraction
from dash.queries import data as data_queries


def count(turn: Turn, fraction: Fraction) -> None:
    """A well-formed N/D: find the prompt it answers, record it, say what it means."""
    team = choose_team(turn)
    if team is None:
        return
    session = turn.session
    measure = None
    if fraction.measure:
        measures = data_queries.measures_of(session, team)
        measure = data_queries.match_measure(measures, fraction.measure)
        if measure is None:
            turn.fail(
                "data_unknown_measure",
                flow="data",
                step="fix",
                word=fraction.measure,
                keys=[m.key for m in measures],
            )
            return
    target, day = data_queries.answer_target(
        session, team, now=turn.now, day=fraction.day, measure=measure
    )
    try:
        recorded = data_actions.record_value(
            session,
            team=team,
            measure=target,
            day=day,
            numerator=fraction.numerator,
            denominator=fraction.denominator,
            person=turn.person,
            channel=turn.channel,
            message=turn.message,
        )
    except UserError:
        turn.fail("data_bad_future_day", flow="data", step="fix", numerator=None, denominator=None)
        return
    pending = turn.pending()
    if pending is not None and pending.flow == "data":
        turn.done()
    picture = data_queries.running_picture(session, team, target, day)
    following = data_queries.next_unanswered(session, team, turn.now)
    if following is not None and following[1] < day:
        # Only the counts of the day just sent (or a later one) follow it: an older day left
        # open would be asked for again after every count, for a week.
        following = None
    replaced = recorded.replaced
    today = turn.today(team)
    topic = team.cohort.topic
    turn.reply(
        "data_recorded",
        numerator=fraction.numerator,
        denominator=fraction.denominator,
        measure_name=measure_name(target, topic, turn.lang),
        several_measures=len(data_queries.measures_of(session, team)) > 1,
        day_label=turn.label(day),
        is_today=day == today,
        replaced=f"{replaced.numerator}/{replaced.denominator}" if replaced else "",
        next_measure=measure_name(following[0], topic, turn.lang) if following else "",
        next_day=turn.label(following[1]) if following else "",
        better=target.better,
        **picture,
    )


def bad(turn: Turn, fraction: BadFraction) -> None:
    """Meant as a count but not one: say what was expected; nothing is recorded."""
    turn.fail(
        f"data_bad_{fraction.reason}",
        flow="data",
        step="fix",
        numerator=fraction.numerator,
        denominator=fraction.denominator,
    )
