"""Daily counts by chat: file each count where it belongs, confirm it with the running picture.

A count is filed to the prompt it answers (dash.queries.data.answer_candidates). When several
measures wait for a count and nothing in the message says which, the sender is asked (numbered
buttons); a count that would replace a colleague's waits for a YES. Pending questions of the
"data" flow: "fix" (after a bad count), "which" (which measure), "replace" (confirm replacing
a colleague's count) and "next" (the measure the bot just asked for: a bare count answers it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from dash.actions import data as data_actions
from dash.chartdata import measure_name
from dash.engine.identity import choose_team
from dash.engine.turn import Turn
from dash.errors import UserError
from dash.models import Measure, PendingQuestion, Person, Team
from dash.parsing import (
    BadFraction,
    Fraction,
    parse_choice,
    parse_counts,
    parse_fraction,
    parse_yes_no,
)
from dash.queries import data as data_queries
from dash.queries import people as people_queries

#: How long "Next, please: <measure>" stays the measure a bare count answers.
NEXT_FRESH = timedelta(hours=2)


@dataclass(frozen=True)
class _Count:
    """One count to file: N/D and where it goes."""

    numerator: int
    denominator: int
    measure: Measure
    day: date


def count(turn: Turn, fraction: Fraction) -> None:
    """A well-formed N/D: find the prompt it answers, record it, say what it means."""
    team = choose_team(turn)
    if team is None:
        return
    reparsed = parse_fraction(turn.text, turn.today(team)) if turn.text else None
    if isinstance(reparsed, Fraction):
        fraction = reparsed  # the day words resolved in the unit's own time zone
    elif isinstance(reparsed, BadFraction):
        bad(turn, reparsed)
        return
    measure = _named_measure(turn, team, fraction)
    if fraction.measure and measure is None:
        return
    pending = turn.pending()
    following = _asked_next(turn, team, pending) if measure is None and fraction.day is None else None
    if following is not None:
        places = [following]
    else:
        places = data_queries.answer_candidates(
            turn.session, team, now=turn.now, day=fraction.day, measure=measure, person=turn.person
        )
    if len(places) > 1:
        _ask_which(turn, team, fraction, places)
        return
    if pending is not None and pending.flow == "data":
        turn.done()
    target, day = places[0]
    _file(turn, team, _Count(fraction.numerator, fraction.denominator, target, day))


def several(turn: Turn, parts: list[Fraction | BadFraction]) -> None:
    """Two or more counts in one message: filed in order to the open prompts when they match
    them one for one (or each names its measure); otherwise nothing is filed and the sender is
    shown how to send them."""
    team = choose_team(turn)
    if team is None:
        return
    reparsed = parse_counts(turn.text, turn.today(team)) if turn.text else None
    if reparsed:
        parts = reparsed  # the day words resolved in the unit's own time zone
    bad_part = next((p for p in parts if isinstance(p, BadFraction)), None)
    if bad_part is not None:
        bad(turn, bad_part)
        return
    fractions = [p for p in parts if isinstance(p, Fraction)]
    named: list[tuple[Fraction, Measure | None]] = []
    for fraction in fractions:
        measure = _named_measure(turn, team, fraction)
        if fraction.measure and measure is None:
            return
        named.append((fraction, measure))
    open_now = data_queries.open_prompts(turn.session, team, turn.now)
    counts: list[_Count] = []
    bare = [f for f, m in named if m is None and f.day is None]
    if bare and len(bare) != len(fractions):
        bare = []  # a mix of named and bare counts: the bare ones are not guessed
    if bare:
        if len(bare) != len(open_now):
            _unclear(turn, team, open_now, len(fractions))
            return
        counts = [
            _Count(f.numerator, f.denominator, m, d)
            for f, (m, d) in zip(bare, open_now, strict=True)
        ]
    else:
        for fraction, measure in named:
            places = data_queries.answer_candidates(
                turn.session,
                team,
                now=turn.now,
                day=fraction.day,
                measure=measure,
                person=turn.person,
            )
            if measure is None or len(places) != 1:
                _unclear(turn, team, open_now, len(fractions))
                return
            counts.append(_Count(fraction.numerator, fraction.denominator, *places[0]))
    pending = turn.pending()
    if pending is not None and pending.flow == "data":
        turn.done()
    lines: list[dict[str, Any]] = []
    for item in counts:
        previous = data_queries.current_value(turn.session, team, item.measure, item.day)
        line = {
            "numerator": item.numerator,
            "denominator": item.denominator,
            "measure_name": _name(turn, team, item.measure),
            "day_label": turn.label(item.day),
            "other_name": "",
            "replaced": "",
            "refused": False,
        }
        if _someone_else(turn, previous):
            line["other_name"] = _reporter_name(turn, previous)
            line["replaced"] = f"{previous.numerator}/{previous.denominator}"
        else:
            try:
                recorded = _record(turn, team, item)
            except UserError:
                line["refused"] = True
            else:
                if recorded.replaced is not None:
                    old = recorded.replaced
                    line["replaced"] = f"{old.numerator}/{old.denominator}"
        lines.append(line)
    turn.reply("data_recorded_several", lines=lines, example=_example(turn, team))


def bad(turn: Turn, fraction: BadFraction) -> None:
    """Meant as a count but not one: say what was expected; nothing is recorded."""
    turn.fail(
        f"data_bad_{fraction.reason}",
        flow="data",
        step="fix",
        numerator=fraction.numerator,
        denominator=fraction.denominator,
    )


def answer(turn: Turn, pending: PendingQuestion, fraction: Fraction | BadFraction | None) -> bool:
    """The answer to a question of the data flow; False lets the message go on as free text."""
    if pending.step == "which":
        return _answer_which(turn, pending)
    if pending.step == "replace":
        return _answer_replace(turn, pending)
    if isinstance(fraction, BadFraction):
        if choose_team(turn) is not None:
            bad(turn, fraction)
        return True
    turn.done()
    return False


def help_context(turn: Turn) -> dict[str, Any]:
    """What HELP shows about counts: the team's measures, numbered, when there are several."""
    person = turn.person
    if person is None:
        return {"measures": []}
    teams = people_queries.teams_of(turn.session, person)
    if len(teams) != 1:
        return {"measures": []}
    measures = data_queries.measures_of(turn.session, teams[0])
    if len(measures) < 2:
        return {"measures": []}
    return {"measures": [_name(turn, teams[0], m) for m in measures]}


# -- where a count goes ------------------------------------------------------------------------


def _named_measure(turn: Turn, team: Team, fraction: Fraction) -> Measure | None:
    """The measure the message names (word or number); None (and the sender told) if unknown."""
    if not fraction.measure:
        return None
    measures = data_queries.measures_of(turn.session, team)
    names = {m.id: _name(turn, team, m) for m in measures}
    measure = data_queries.match_measure(measures, fraction.measure, names)
    if measure is None:
        turn.fail(
            "data_unknown_measure",
            flow="data",
            step="fix",
            word=fraction.measure,
            keys=[m.key for m in measures],
            measures=[names[m.id] for m in measures],
        )
    return measure


def _asked_next(
    turn: Turn, team: Team, pending: PendingQuestion | None
) -> tuple[Measure, date] | None:
    """The measure this sender was just asked for ("Next, please"), while it still waits."""
    if pending is None or (pending.flow, pending.step) != ("data", "next"):
        return None
    if pending.team_id not in (None, team.id) or turn.now - pending.asked_at > NEXT_FRESH:
        return None
    measure = turn.session.get(Measure, pending.data.get("measure_id"))
    day = _day(pending.data.get("day"))
    if measure is None or day is None:
        return None
    if data_queries.current_value(turn.session, team, measure, day) is not None:
        return None
    return measure, day


def _ask_which(
    turn: Turn, team: Team, fraction: Fraction, places: list[tuple[Measure, date]]
) -> None:
    turn.ask(
        "data",
        "which",
        team=team,
        data={
            "numerator": fraction.numerator,
            "denominator": fraction.denominator,
            "places": [[m.id, d.isoformat()] for m, d in places],
        },
    )
    turn.reply(
        "data_which_measure",
        numerator=fraction.numerator,
        denominator=fraction.denominator,
        options=_options(turn, team, places),
        number=_position(turn, team, places[0][0]),
        payload={
            "buttons": [[{"text": str(i + 1), "data": f"choice:{i + 1}"}] for i in range(len(places))]
        },
    )


def _answer_which(turn: Turn, pending: PendingQuestion) -> bool:
    team = turn.team or turn.session.get(Team, pending.team_id)
    places = [
        (turn.session.get(Measure, mid), _day(day)) for mid, day in pending.data.get("places") or []
    ]
    if team is None or not places or any(m is None or d is None for m, d in places):
        turn.done()
        return False
    turn.use_team(team)
    choice = parse_choice(turn.text, turn.callback, len(places))
    if choice is None and turn.text and not turn.callback:
        measures = [m for m, _ in places if m is not None]
        names = {m.id: _name(turn, team, m) for m in measures}
        word = data_queries.match_measure(measures, turn.text, names)
        choice = next((i + 1 for i, (m, _) in enumerate(places) if word is not None and m is word), None)
    if choice is None:
        chosen = [(m, d) for m, d in places if m is not None and d is not None]
        turn.fail("data_which_again", options=_options(turn, team, chosen))
        return True
    measure, day = places[choice - 1]
    assert measure is not None and day is not None
    item = _Count(int(pending.data["numerator"]), int(pending.data["denominator"]), measure, day)
    turn.done()
    # The options showed who sent a count already there: choosing it is the confirmation.
    _file(turn, team, item, confirmed=True)
    return True


# -- recording ---------------------------------------------------------------------------------


def _file(turn: Turn, team: Team, item: _Count, *, confirmed: bool = False) -> None:
    """Record `item` and confirm it; a colleague's count is replaced only after a YES."""
    previous = data_queries.current_value(turn.session, team, item.measure, item.day)
    same = previous is not None and (previous.numerator, previous.denominator) == (
        item.numerator,
        item.denominator,
    )
    if not confirmed and not same and _someone_else(turn, previous):
        assert previous is not None
        turn.ask(
            "data",
            "replace",
            team=team,
            data={
                "numerator": item.numerator,
                "denominator": item.denominator,
                "measure_id": item.measure.id,
                "day": item.day.isoformat(),
            },
        )
        turn.reply(
            "data_replace_ask",
            other_name=_reporter_name(turn, previous),
            old=f"{previous.numerator}/{previous.denominator}",
            new=f"{item.numerator}/{item.denominator}",
            measure_name=_name(turn, team, item.measure),
            day_label=turn.label(item.day),
            payload={
                "buttons": [
                    [
                        {"text": "YES", "data": "replace:yes"},
                        {"text": "NO", "data": "replace:no"},
                    ]
                ]
            },
        )
        return
    replaced_name = _reporter_name(turn, previous) if confirmed and previous else ""
    try:
        recorded = _record(turn, team, item)
    except UserError:
        turn.fail("data_bad_future_day", flow="data", step="fix", numerator=None, denominator=None)
        return
    session = turn.session
    picture = data_queries.running_picture(session, team, item.measure, item.day)
    following = data_queries.next_unanswered(session, team, turn.now)
    if following is not None and following[1] < item.day:
        # Only the counts of the day just sent (or a later one) follow it: an older day left
        # open would be asked for again after every count, for a week.
        following = None
    replaced = recorded.replaced
    topic = team.cohort.topic
    current = turn.pending()
    if following is not None and (current is None or current.flow == "data"):
        turn.ask(
            "data",
            "next",
            team=team,
            data={"measure_id": following[0].id, "day": following[1].isoformat()},
        )
    turn.reply(
        "data_recorded",
        numerator=item.numerator,
        denominator=item.denominator,
        measure_name=measure_name(item.measure, topic, turn.lang),
        several_measures=len(data_queries.measures_of(session, team)) > 1,
        day_label=turn.label(item.day),
        is_today=item.day == turn.today(team),
        replaced=f"{replaced.numerator}/{replaced.denominator}" if replaced else "",
        replaced_name=replaced_name,
        next_measure=measure_name(following[0], topic, turn.lang) if following else "",
        next_day=turn.label(following[1]) if following else "",
        better=item.measure.better,
        **picture,
    )


def _answer_replace(turn: Turn, pending: PendingQuestion) -> bool:
    team = turn.team or turn.session.get(Team, pending.team_id)
    measure = turn.session.get(Measure, pending.data.get("measure_id"))
    day = _day(pending.data.get("day"))
    if team is None or measure is None or day is None:
        turn.done()
        return False
    turn.use_team(team)
    if turn.callback in ("replace:yes", "replace:no"):
        decision = turn.callback.split(":", 1)[1]
    else:
        parsed = parse_yes_no(turn.text)
        decision = parsed[0] if parsed else ""
    item = _Count(int(pending.data["numerator"]), int(pending.data["denominator"]), measure, day)
    previous = data_queries.current_value(turn.session, team, measure, day)
    if decision not in ("yes", "no"):
        turn.fail(
            "data_replace_yes_or_no",
            old=f"{previous.numerator}/{previous.denominator}" if previous else "",
            new=f"{item.numerator}/{item.denominator}",
        )
        return True
    turn.done()
    if decision == "yes":
        _file(turn, team, item, confirmed=True)
    else:
        turn.reply(
            "data_replace_kept",
            old=f"{previous.numerator}/{previous.denominator}" if previous else "",
            other_name=_reporter_name(turn, previous) if previous else "",
            measure_name=_name(turn, team, measure),
            day_label=turn.label(day),
        )
    return True


def _record(turn: Turn, team: Team, item: _Count) -> data_actions.Recorded:
    return data_actions.record_value(
        turn.session,
        team=team,
        measure=item.measure,
        day=item.day,
        numerator=item.numerator,
        denominator=item.denominator,
        person=turn.person,
        channel=turn.channel,
        message=turn.message,
    )


def _unclear(
    turn: Turn, team: Team, open_now: list[tuple[Measure, date]], sent: int
) -> None:
    """Several counts that cannot be matched to the open prompts: nothing is filed."""
    turn.reply(
        "data_several_unclear",
        sent=sent,
        options=[(_name(turn, team, m), turn.label(d)) for m, d in open_now],
        example=_example(turn, team),
    )


# -- small helpers -----------------------------------------------------------------------------


def _someone_else(turn: Turn, previous: Any) -> bool:
    """Whether the current value came from someone other than this sender."""
    if previous is None or turn.person is None:
        return False
    return previous.reported_by_id != turn.person.id


def _reporter_name(turn: Turn, value: Any) -> str:
    if value is None or value.reported_by_id is None:
        return ""
    person = turn.session.get(Person, value.reported_by_id)
    return person.name if person is not None else ""


def _name(turn: Turn, team: Team, measure: Measure) -> str:
    return measure_name(measure, team.cohort.topic, turn.lang)


def _options(
    turn: Turn, team: Team, places: list[tuple[Measure, date]]
) -> list[dict[str, str]]:
    """Each place a count may go, as the question lists it: the measure, the day and the
    count already there with who sent it."""
    options = []
    for measure, day in places:
        value = data_queries.current_value(turn.session, team, measure, day)
        options.append(
            {
                "name": _name(turn, team, measure),
                "day": turn.label(day),
                "value": f"{value.numerator}/{value.denominator}" if value else "",
                "by": _reporter_name(turn, value) if value else "",
            }
        )
    return options


def _position(turn: Turn, team: Team, measure: Measure) -> int:
    measures = data_queries.measures_of(turn.session, team)
    return next((i + 1 for i, m in enumerate(measures) if m.id == measure.id), 1)


def _example(turn: Turn, team: Team) -> bool:
    return len(data_queries.measures_of(turn.session, team)) > 1


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None
