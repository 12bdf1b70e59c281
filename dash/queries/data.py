"""Daily measure data as recorded: a team's measures, values and series, and which prompt a reply answers.

How a reply finds its prompt (the contract with the scheduler): each daily prompt is an agenda
row of kind "daily_prompt", payload {"measure": key, "day": "YYYY-MM-DD"}, state "done" once
sent. A bare count answers the team's open (unanswered) prompt; when the open prompts are for
several measures the count is ambiguous and the sender is asked which (`answer_candidates`
returns them all). With nothing open it corrects the newest prompted day. A day or measure word
(or the measure's number) in the message narrows that down; with no prompt at all it is
today's count of the primary measure.
"""

from __future__ import annotations

import re
import statistics
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import AgendaItem, AgendaState, Measure, MeasureValue, Person, Team
from dash.parsing import fold
from dash.timeutil import local_date, utcnow

#: How far back an unanswered prompt still catches a bare count.
PROMPT_LOOKBACK_DAYS = 7


def team_today(team: Team, now: datetime | None = None) -> date:
    """The unit's local date now."""
    return local_date(now or utcnow(), team.cohort.timezone)


def measures_of(session: Session, team: Team) -> list[Measure]:
    return list(
        session.execute(
            select(Measure).where(Measure.cohort_id == team.cohort_id).order_by(Measure.position)
        ).scalars()
    )


def primary_measure(session: Session, team: Team) -> Measure:
    measures = measures_of(session, team)
    if not measures:
        raise UserError(f"the cohort of {team.name} has no measures")
    return next((m for m in measures if m.primary), measures[0])


def match_measure(
    measures: list[Measure], word: str, names: dict[int, str] | None = None
) -> Measure | None:
    """The measure a word names: its number in the list (1-based), its key, the one key it is
    a prefix of, else the one measure with a word of its key or (shown) name starting so."""
    word = fold(word).strip(" #.:")
    if not word:
        return None
    if word.isdigit():
        n = int(word)
        return measures[n - 1] if 1 <= n <= len(measures) else None
    exact = [m for m in measures if m.key == word]
    if exact:
        return exact[0]
    starts = [m for m in measures if m.key.startswith(word)]
    if len(starts) == 1:
        return starts[0]
    if len(word) < 3:
        return None

    def words(m: Measure) -> list[str]:
        shown = (names or {}).get(m.id, "")
        return re.split(r"[^a-z0-9]+", fold(f"{m.key} {m.name} {shown}"))

    loose = [m for m in measures if any(w.startswith(word) for w in words(m))]
    return loose[0] if len(loose) == 1 else None


def current_value(session: Session, team: Team, measure: Measure, day: date) -> MeasureValue | None:
    return session.execute(
        select(MeasureValue).where(
            MeasureValue.team_id == team.id,
            MeasureValue.measure_id == measure.id,
            MeasureValue.day == day,
            MeasureValue.is_current.is_(True),
        )
    ).scalar_one_or_none()


def sent_prompts(session: Session, team: Team, now: datetime) -> list[tuple[date, str]]:
    """(day, measure key) of daily prompts already sent to the team, newest day first."""
    rows = session.execute(
        select(AgendaItem).where(
            AgendaItem.team_id == team.id,
            AgendaItem.kind == "daily_prompt",
            AgendaItem.state == AgendaState.DONE.value,
            AgendaItem.due_at <= now,
            AgendaItem.local_day >= team_today(team, now) - timedelta(days=PROMPT_LOOKBACK_DAYS),
        )
    ).scalars()
    found: list[tuple[date, str]] = []
    for row in rows:
        payload = row.payload or {}
        try:
            day = date.fromisoformat(str(payload.get("day") or row.local_day.isoformat()))
        except ValueError:
            continue
        key = payload.get("measure")
        if isinstance(key, str):
            found.append((day, key))
    return sorted(set(found), key=lambda p: p[0], reverse=True)


def _prompted(
    session: Session, team: Team, now: datetime, day: date | None, measure: Measure | None
) -> list[tuple[date, Measure]]:
    """(day, measure) of every prompt sent to `team`, limited to `day` and `measure` if given."""
    by_key = {m.key: m for m in measures_of(session, team)}
    return [
        (d, by_key[k])
        for d, k in sent_prompts(session, team, now)
        if k in by_key
        and (day is None or d == day)
        and (measure is None or by_key[k].id == measure.id)
    ]


def answer_target(
    session: Session,
    team: Team,
    *,
    now: datetime,
    day: date | None = None,
    measure: Measure | None = None,
) -> tuple[Measure, date]:
    """Which measure and day a count answers (see the module docstring)."""
    prompts = _prompted(session, team, now, day, measure)
    # Within a day, measures in curriculum order: the first unanswered one is asked first.
    prompts.sort(key=lambda p: (-p[0].toordinal(), p[1].position))
    answered = _answered(session, team, prompts)
    unanswered = [p for p in prompts if (p[1].id, p[0]) not in answered]
    if unanswered:
        d, m = unanswered[0]
        return m, d
    if prompts:
        d, m = prompts[0]
        return m, d
    return (measure or primary_measure(session, team)), (day or team_today(team, now))


def answer_candidates(
    session: Session,
    team: Team,
    *,
    now: datetime,
    day: date | None = None,
    measure: Measure | None = None,
    person: Person | None = None,
) -> list[tuple[Measure, date]]:
    """Where a count may go, in curriculum order: one place means file it there; several mean
    the count is ambiguous and the sender must choose.

    A bare count answers the newest day with an open prompt, its measures in curriculum order
    (the day's prompts are answered in order, "Next, please" naming the next one). When
    someone else has already answered some of that day's measures and the sender has not,
    the sender cannot know what is left: every measure prompted that day is a candidate.
    With nothing open it is a correction of the newest prompted day: of the sender's own
    count there when they sent one (the first in curriculum order), else any of that day's
    measures.
    """
    prompts = _prompted(session, team, now, day, measure)
    if not prompts:
        return [((measure or primary_measure(session, team)), (day or team_today(team, now)))]
    prompts.sort(key=lambda p: (-p[0].toordinal(), p[1].position))
    answered = _answered(session, team, prompts)
    unanswered = [p for p in prompts if (p[1].id, p[0]) not in answered]
    latest = (unanswered or prompts)[0][0]
    on_day = [(m, d) for d, m in prompts if d == latest]
    values = {
        (m.id, d): v for m, d in on_day if (v := current_value(session, team, m, d)) is not None
    }
    mine = [v for v in values.values() if person is not None and v.reported_by_id == person.id]
    if unanswered:
        first = next((m, d) for m, d in on_day if (m.id, d) not in values)
        others = any(person is None or v.reported_by_id != person.id for v in values.values())
        if mine or not others:
            return [first]
        return on_day
    if mine:
        own = {v.measure_id for v in mine}
        return [next((m, d) for m, d in on_day if m.id in own)]
    return on_day


def open_prompts(session: Session, team: Team, now: datetime) -> list[tuple[Measure, date]]:
    """Every sent prompt still waiting for a count, oldest day first, curriculum order within
    a day: the order in which several counts in one message are filed."""
    by_key = {m.key: m for m in measures_of(session, team)}
    prompts = [(d, by_key[k]) for d, k in sent_prompts(session, team, now) if k in by_key]
    answered = _answered(session, team, prompts)
    waiting = [(m, d) for d, m in prompts if (m.id, d) not in answered]
    return sorted(waiting, key=lambda p: (p[1], p[0].position))


def next_unanswered(session: Session, team: Team, now: datetime) -> tuple[Measure, date] | None:
    """The next prompt still waiting for a count, to mention after recording one."""
    by_key = {m.key: m for m in measures_of(session, team)}
    prompts = [(d, by_key[k]) for d, k in sent_prompts(session, team, now) if k in by_key]
    prompts.sort(key=lambda p: (-p[0].toordinal(), p[1].position))
    answered = _answered(session, team, prompts)
    for d, m in prompts:
        if (m.id, d) not in answered:
            return m, d
    return None


def _answered(
    session: Session, team: Team, prompts: list[tuple[date, Measure]]
) -> set[tuple[int, date]]:
    """(measure id, day) of the prompts that have a current value: one query for them all (a
    `current_value` per prompt was up to 21 queries per count received)."""
    if not prompts:
        return set()
    rows = session.execute(
        select(MeasureValue.measure_id, MeasureValue.day).where(
            MeasureValue.team_id == team.id,
            MeasureValue.measure_id.in_({m.id for _, m in prompts}),
            MeasureValue.day.in_({d for d, _ in prompts}),
            MeasureValue.is_current.is_(True),
        )
    )
    return {(measure_id, day) for measure_id, day in rows}


def series(session: Session, team: Team, measure: Measure) -> list[MeasureValue]:
    """The team's current values of `measure`, by day."""
    return list(
        session.execute(
            select(MeasureValue)
            .where(
                MeasureValue.team_id == team.id,
                MeasureValue.measure_id == measure.id,
                MeasureValue.is_current.is_(True),
            )
            .order_by(MeasureValue.day)
        ).scalars()
    )


def running_picture(session: Session, team: Team, measure: Measure, day: date) -> dict[str, Any]:
    """What to tell the reporter about the number they just sent, in plain words.

    Keys: pct (int or None for 0/0), days (count of days with a value), best (this is the
    best day so far, with at least three days), median_pct, goal_pct, vs_goal ('met' /
    'below'), signal ('shift' | 'trend' | ''), signal_days, direction ('better' | 'worse').
    """
    values = series(session, team, measure)
    this = next((v for v in values if v.day == day), None)
    points = [v.value for v in values]
    useful = [p for p in points if p is not None]
    pct = round(this.value * 100) if this is not None and this.value is not None else None
    higher = measure.better == "higher"
    best = False
    if this is not None and this.value is not None and len(useful) >= 3:
        others = [v.value for v in values if v.day != day and v.value is not None]
        best = bool(others) and (this.value > max(others) if higher else this.value < min(others))
    median_pct = round(statistics.median(useful) * 100) if len(useful) >= 3 else None
    goal_pct = round(measure.goal * 100) if measure.goal is not None else None
    vs_goal = ""
    if this is not None and this.value is not None and measure.goal is not None:
        met = this.value >= measure.goal if higher else this.value <= measure.goal
        vs_goal = "met" if met else "below"
    signal, signal_days, direction = _signal(points, higher)
    return {
        "pct": pct,
        "days": len(values),
        "best": best,
        "median_pct": median_pct,
        "goal_pct": goal_pct,
        "vs_goal": vs_goal,
        "signal": signal,
        "signal_days": signal_days,
        "direction": direction,
    }


def _signal(points: list[float | None], higher: bool) -> tuple[str, int, str]:
    """A run-chart signal in the latest points, via dash.analytics (IHI rules), if it is there.

    Returns (kind, how many days, better/worse). Empty when analytics is not available or
    nothing non-random shows at the end of the series.
    """
    try:
        from dash.analytics import runs_analysis
    except ImportError:
        return "", 0, ""
    useful = [p for p in points if p is not None]
    if len(useful) < 5:
        return "", 0, ""
    try:
        result = runs_analysis(points, centre=None)
    except Exception:  # analytics is someone else's module; a bad day there must not lose data
        return "", 0, ""
    centre = result.centre
    # The run at the end of the series: consecutive latest points on one side of the centre.
    run, side = 0, 0
    for p in reversed(useful):
        s = (p > centre) - (p < centre)
        if s == 0:
            continue
        if side == 0:
            side = s
        if s != side:
            break
        run += 1
    up = side > 0
    if getattr(result, "shift", False) and run >= 6:
        return "shift", run, "better" if up == higher else "worse"
    rising = 1
    for a, b in zip(reversed(useful[:-1]), reversed(useful[1:]), strict=False):
        if b > a:
            rising += 1
        elif b == a:
            continue
        else:
            break
    falling = 1
    for a, b in zip(reversed(useful[:-1]), reversed(useful[1:]), strict=False):
        if b < a:
            falling += 1
        elif b == a:
            continue
        else:
            break
    if getattr(result, "trend", False) and max(rising, falling) >= 5:
        going_up = rising >= falling
        return "trend", max(rising, falling), "better" if going_up == higher else "worse"
    return "", 0, ""
