"""`dash demo`: a whole two-week Improvement Dash, simulated, in well under a minute.

Only the clock and the people are simulated. Everything else is the product as deployed: the
cohorts are created and the coaches added by the same actions as `dash cohort create` and
`dash coach add`; key contacts enrol their units by chat (JOIN, the matrix, the leader, who
answers YES); members join with the team code; every message goes through
`dash.engine.handle_inbound` on the console channel, exactly as `dash chat` sends it; the
scheduler's `dispatch(ctx, now)` sends prompts, reminders, nudges, follow-ups and summaries;
the delivery worker hands the outbox to the console sender; the simulated people read what
was delivered to their address and answer it. Coaches answer their teams' messages with
`coach_reply` and rate the teams at the end.

The clock (dash.timeutil.use_clock) moves event by event: the scheduler ticks every 15
simulated minutes but only runs when a step is due or someone did something, which keeps a
two-week run to seconds. A seed makes the people's numbers, delays and choices repeatable.

Part of the wiring package dash.app: it wires the scheduler and the console channel of `bots`
together with `dash`, and nothing else in `dash` imports it.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import re
import time as timer
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import func, select

from dash.app.demo.cast import COHORTS, DEMO_START, ENROL_DAY, CohortCast, Someone, TeamCast
from dash.context import AppContext
from dash.curriculum import load_curriculum
from dash.models import AgendaItem, AgendaState, Cohort, Message, OutboxItem, OutboxState, Team
from dash.timeutil import local_date, local_to_utc, to_local, use_clock

#: How often the simulated scheduler looks for due steps.
TICK = timedelta(minutes=15)
#: Something people did (enrolment, a PDSA plan) may add agenda rows; they are never due
#: within hours, so a tick runs for that reason at most this often.
RESYNC = timedelta(hours=3)
#: A coach looks at the dashboard twice a day (local time) and answers what is waiting.
COACH_ROUNDS = (time(9, 0), time(16, 0))
#: What a coach writes when the cast has no specific answer left for a team.
DEFAULT_COACH_REPLY = "Thanks, noted. Let's pick this up at the next session."
#: Dash day and local time the coaches rate their teams (after the last session).
RATING_DAY, RATING_AT = 11, time(17, 0)
#: Baseline days before the start (every shipped curriculum asks for three).
BASELINE_DAYS = 3

_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_JOIN_CODE = re.compile(r"\bJOIN ([A-Z0-9]{4,12})\b")


@dataclass(frozen=True)
class Delivered:
    """One message the console channel delivered to a simulated person."""

    kind: str
    text: str
    payload: dict[str, Any]
    team_id: int | None


@dataclass
class Actor:
    """A simulated person: an address, a team, and what they are in the middle of saying."""

    who: Someone
    team: TeamRun | None
    role: str  # contact, leader, member
    talking: bool = False
    lines: deque[str] = field(default_factory=deque)
    waiting: deque[list[str]] = field(default_factory=deque)


@dataclass
class TeamRun:
    """A cast team during the run: its id once enrolled, its code, its reporter's prompts."""

    cast: TeamCast
    cohort: CohortRun
    index: int
    team_id: int | None = None
    code: str | None = None
    prompted: dict[int, list[str]] = field(default_factory=dict)  # Dash day -> measure keys
    answering: set[int] = field(default_factory=set)
    cycles_reported: int = 0
    replies_used: int = 0


@dataclass
class CohortRun:
    cast: CohortCast
    cohort_id: int
    code: str
    coach_id: int
    measure_keys: list[str]
    teams: list[TeamRun] = field(default_factory=list)

    def at(self, day: int, at: time) -> datetime:
        """The UTC instant of local time `at` on Dash day `day`."""
        return local_to_utc(DEMO_START + timedelta(days=day), at, self.cast.timezone)

    def day_of(self, value: date) -> int:
        return (value - DEMO_START).days


@dataclass
class DemoResult:
    """Where the run left its files, and what it counted."""

    db_path: Path
    report_paths: list[Path]
    index_path: Path
    transcript_path: Path
    elapsed_seconds: float
    simulated_from: datetime
    simulated_to: datetime
    inbound: int
    delivered: int
    rows: list[dict[str, Any]]


class SimClock:
    """The simulated now, as utcnow() reads it while the demo runs."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class Transcript:
    """A text file of the whole conversation, with a time line whenever the minute changes."""

    def __init__(self, out: TextIO, clock: SimClock) -> None:
        self.out = out
        self.clock = clock
        self._stamp: datetime | None = None

    def write(self, text: str) -> int:
        if self._stamp != self.clock.now:
            self._stamp = self.clock.now
            self.out.write(f"\n--- {self.clock.now:%a %d %b %Y %H:%M} UTC ---\n")
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def number_words(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


class Simulation:
    """The event loop of the demo: scheduler ticks, deliveries and people, in time order."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        seed: int,
        days: int,
        transcript: TextIO,
        on_day: Callable[[str], None] | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        from bots.console.chat import ConsoleSender
        from bots.delivery import DeliveryWorker

        self.ctx = ctx
        self.seed = seed
        self.days = days
        self.rng = random.Random(seed)
        self.cohorts: list[CohortRun] = []
        self.actors: dict[str, Actor] = {}
        self.events: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = []
        self._seq = 0
        self.on_day = on_day
        self.on_progress = on_progress
        self.begin = min(
            local_to_utc(DEMO_START + timedelta(days=ENROL_DAY), time(8, 0), c.timezone)
            for c in COHORTS
        )
        self.end = max(
            local_to_utc(DEMO_START + timedelta(days=days), time(12, 0), c.timezone)
            for c in COHORTS
        )
        self.clock = SimClock(self.begin)
        self.transcript = Transcript(transcript, self.clock)
        self.sender = ConsoleSender(ctx, out=self.transcript, me="")  # type: ignore[arg-type]
        self.worker = DeliveryWorker(ctx, {"console": self.sender})
        self.last_outbox_id = 0
        self.next_due: datetime | None = None
        self.dirty = True
        self.last_dispatch = self.begin - RESYNC
        self.inbound = 0
        self.delivered = 0
        self.day_counts: Counter[str] = Counter()

    # -- time --------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now

    def at(self, when: datetime, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` at simulated instant `when` (never in the past)."""
        self._seq += 1
        heapq.heappush(self.events, (max(when, self.now), self._seq, action))

    def think(self, low: int = 1, high: int = 3) -> timedelta:
        """How long a person takes to read a reply and type the next line."""
        return timedelta(minutes=self.rng.randint(low, high), seconds=self.rng.randint(0, 59))

    # -- setting up: the same actions as `dash cohort create` and `dash coach add` ------------

    def create_cohorts(self) -> None:
        from dash.actions.coaches import add_coach
        from dash.actions.cohorts import create_cohort

        with self.ctx.db.transaction() as session:
            for cast in COHORTS:
                cohort = create_cohort(
                    session,
                    topic=cast.topic,
                    start=DEMO_START,
                    timezone=cast.timezone,
                    name=cast.name,
                )
                coach = add_coach(
                    session, email=cast.coach_email, name=cast.coach.name, cohort_id=cohort.id
                )
                run = CohortRun(
                    cast=cast,
                    cohort_id=cohort.id,
                    code=cohort.enrolment_code,
                    coach_id=coach.id,
                    measure_keys=[m.key for m in load_curriculum(cast.topic).measures],
                )
                for index, team in enumerate(cast.teams):
                    run.teams.append(TeamRun(cast=team, cohort=run, index=index))
                self.cohorts.append(run)
        for run in self.cohorts:
            for team in run.teams:
                self.actor(team.cast.contact, team, "contact")
                self.actor(team.cast.leader, team, "leader")
                for member in team.cast.members:
                    self.actor(member, team, "member")
                self.script(team)
            for day in range(ENROL_DAY + 1, self.days + 1):
                for at in COACH_ROUNDS:
                    self.at(run.at(day, at), self._coach_round(run))
            if self.days > RATING_DAY:
                self.at(run.at(RATING_DAY, RATING_AT), self._rate(run))

    def actor(self, who: Someone, team: TeamRun, role: str) -> Actor:
        actor = Actor(who=who, team=team, role=role)
        self.actors[who.address] = actor
        return actor

    def script(self, team: TeamRun) -> None:
        """Everything a team does at a set time; the rest is a reaction to what arrives."""
        cast, cohort = team.cast, team.cohort
        enrol_at = cohort.at(ENROL_DAY, time(9, 0)) + timedelta(minutes=25 * team.index)
        self.say_later(
            cast.contact,
            enrol_at,
            [
                f"JOIN {cohort.code}",
                cast.contact.name,
                cast.organisation,
                cast.unit,
                *(str(score) for score in cast.matrix),
                f"{cast.leader.name}, {cast.leader_title}",
                cast.leader.address,
            ],
        )
        for i, cycle in enumerate(cast.cycles):
            if i > 0 and cast.cycles[i - 1].act == "adapt":
                continue  # planned right after the Act of the cycle it adapts
            self.say_later(
                cast.contact,
                cohort.at(cycle.plan_day, cycle.plan_at),
                ["PLAN", cycle.change, cycle.prediction, cycle.who_where_when, cycle.measure],
            )
        for note in cast.notes:
            who = {"contact": cast.contact, "leader": cast.leader}.get(note.who)
            if who is None:
                who = next(m for m in cast.members if m.name == note.who)
            self.say_later(who, cohort.at(note.day, note.at), [note.text])
        if cast.stop is not None:
            name, day, at = cast.stop
            member = next(m for m in cast.members if m.name == name)
            self.say_later(member, cohort.at(day, at), ["STOP"])
        if cast.chart_day is not None:
            self.say_later(cast.contact, cohort.at(cast.chart_day, time(10, 0)), ["CHART"])
        if cast.help_day is not None:
            self.say_later(cast.members[-1], cohort.at(cast.help_day, time(9, 5)), ["HELP"])

    # -- people talking -----------------------------------------------------------------------

    def say_later(self, who: Someone, when: datetime, lines: list[str]) -> None:
        """`who` will send `lines`, each after reading the bot's answer to the one before."""
        if when >= self.end:
            return
        actor = self.actors[who.address]

        async def start() -> None:
            if actor.talking:
                actor.waiting.append(list(lines))
                return
            actor.lines.extend(lines)
            actor.talking = True
            await self._next_line(actor)

        self.at(when, start)

    async def _next_line(self, actor: Actor) -> None:
        if not actor.lines:
            if actor.waiting:
                actor.lines.extend(actor.waiting.popleft())
            else:
                actor.talking = False
                return
        line = actor.lines.popleft()
        await self.send(actor, line)
        self.at(self.now + self.think(), lambda: self._next_line(actor))

    async def send(self, actor: Actor, text: str) -> None:
        """One typed line into the console channel, then delivery of whatever it caused."""
        from bots.console.chat import inbound_from_console
        from dash.engine import handle_inbound

        self.transcript.write(f"[from {actor.who.address}, {actor.who.name}]\n{text}\n")
        handle_inbound(self.ctx, inbound_from_console(actor.who.address, text))
        self.inbound += 1
        self.day_counts["in"] += 1
        self.dirty = True
        await self.deliver()

    # -- delivery and reading -----------------------------------------------------------------

    async def deliver(self) -> None:
        """Drain the outbox through the console sender; hand each message to its reader."""
        sent = await self.worker.drain_once(now=self.now)
        if not sent:
            return
        with self.ctx.db.transaction() as session:
            rows = session.execute(
                select(OutboxItem.id, OutboxItem.address, OutboxItem.payload, Message)
                .join(Message, Message.id == OutboxItem.message_id)
                .where(
                    OutboxItem.id > self.last_outbox_id,
                    OutboxItem.state == OutboxState.SENT.value,
                    OutboxItem.channel == "console",
                )
                .order_by(OutboxItem.id)
            ).all()
        for outbox_id, address, payload, message in rows:
            self.last_outbox_id = max(self.last_outbox_id, outbox_id)
            self.delivered += 1
            self.day_counts["out"] += 1
            if message.kind.startswith("nudge"):
                self.day_counts["nudges"] += 1
            actor = self.actors.get(address)
            if actor is not None:
                self.read(
                    actor, Delivered(message.kind, message.text, payload or {}, message.team_id)
                )

    def read(self, actor: Actor, message: Delivered) -> None:
        """What a person does about a message they received."""
        team = actor.team
        if team is None:
            return
        if message.kind == "signoff" and actor.role == "leader":
            answer = "YES" if team.index % 2 == 0 else "Yes, go ahead - keep me posted"
            self.say_later(actor.who, self.now + self.think(25, 50), [answer])
        elif actor.role == "contact" and team.code is None and message.team_id is not None:
            found = _JOIN_CODE.search(message.text)
            if found:
                self._enrolled(team, found.group(1), message.team_id)
        elif message.kind == "daily_prompt" and actor.who == self._reporter(team):
            prompt = message.payload.get("prompt") or {}
            day = team.cohort.day_of(date.fromisoformat(str(prompt.get("day"))))
            # One prompt lists every measure still open that day ("measures").
            asked = prompt.get("measures") or [prompt.get("measure")]
            team.prompted.setdefault(day, []).extend(str(key) for key in asked)
            if day not in team.answering:
                team.answering.add(day)
                self._answer_day(team, day)
        elif message.kind == "pdsa_followup" and actor.role == "contact":
            self._report_cycle(team)

    def _reporter(self, team: TeamRun) -> Someone:
        """The member who answers the daily prompts: the first to join (the data reporter)."""
        return team.cast.members[0]

    def _enrolled(self, team: TeamRun, code: str, team_id: int) -> None:
        """The key contact read the approval: the team code goes round the unit."""
        team.code, team.team_id = code, team_id
        cohort, cast = team.cohort, team.cast
        if cast.shares:
            self.say_later(cast.contact, self.now + self.think(10, 20), ["SHARE ON"])
        for i, member in enumerate(cast.members):
            when = max(
                cohort.at(ENROL_DAY + 1, time(8, 10)) + timedelta(minutes=35 * i),
                self.now + self.think(5, 15),
            )
            self.say_later(member, when, [f"JOIN {code}", member.name])

    # -- the daily count ----------------------------------------------------------------------

    def counts(self, team: TeamRun, measure: str, day: int) -> tuple[int, int]:
        """The day's true count for a measure: better once the team's changes take hold."""
        cast = team.cast
        index = team.cohort.measure_keys.index(measure)
        rng = random.Random(f"{self.seed}:{cast.key}:{measure}:{day}")
        before, after = cast.before[index], cast.after[index]
        if day < cast.improves_from:
            p = before
        else:
            p = before + (after - before) * min(1.0, (day - cast.improves_from + 1) / 2)
        denominator = rng.randint(6, 12)
        numerator = sum(rng.random() < p for _ in range(denominator))
        return numerator, denominator

    def _answer_day(self, team: TeamRun, day: int) -> None:
        """Plan the reporter's answer to `day`'s prompts by the team's habit that day."""
        habit = team.cast.habits.get(day, "on time")
        cohort, reporter = team.cohort, self._reporter(team)
        if habit == "missed":
            return
        if habit == "late":
            when = cohort.at(day + 1, time(7, 30)) + timedelta(minutes=self.rng.randint(0, 60))
        else:
            when = self.now + timedelta(minutes=self.rng.randint(10, 95))

        async def answer() -> None:
            keys = sorted(set(team.prompted.get(day, [])), key=cohort.measure_keys.index)
            values = [self.counts(team, key, day) for key in keys]
            weekday = _WEEKDAYS[(DEMO_START + timedelta(days=day)).weekday()]
            lines = [f"{n}/{d}" for n, d in values]
            if habit == "late":
                lines = [f"{weekday} {n}/{d}" for n, d in values]
            elif habit == "words" and values:
                n, d = values[0]
                lines.insert(0, f"{number_words(n)} of {number_words(d)}")
            elif habit == "over" and values:
                n, d = values[0]
                if not 0 < n < d:  # swapped numbers only look wrong when they differ
                    n = max(1, min(n, d - 1))
                    lines[0] = f"{n}/{d}"
                lines.insert(0, f"{d}/{n}")
            elif habit == "correct" and values:
                n, d = values[0]
                fixed = n - 1 if n > 0 else n + 1
                self.say_later(reporter, cohort.at(day, time(20, 30)), [f"{weekday} {fixed}/{d}"])
            self.say_later(reporter, self.now, lines)

        self.at(when, answer)

    # -- PDSA follow-ups ----------------------------------------------------------------------

    def _report_cycle(self, team: TeamRun) -> None:
        """The key contact answers the scheduler's "how did the test go": Do, Study, Act."""
        cycles = team.cast.cycles
        if team.cycles_reported >= len(cycles):
            return
        cycle = cycles[team.cycles_reported]
        team.cycles_reported += 1
        lines = [cycle.do, cycle.study, cycle.act]
        if cycle.act == "adopt":
            lines.append(cycle.story)
        elif cycle.act == "adapt" and team.cycles_reported < len(cycles):
            following = cycles[team.cycles_reported]
            lines += [
                following.change,
                following.prediction,
                following.who_where_when,
                following.measure,
            ]
        self.say_later(team.cast.contact, self.now + self.think(20, 90), lines)

    # -- coaches ------------------------------------------------------------------------------

    def _coach_round(self, cohort: CohortRun) -> Callable[[], Awaitable[None]]:
        async def round_() -> None:
            from dash.actions.threads import coach_reply
            from dash.models import Person
            from dash.queries.threads import waiting_messages

            replied = False
            with self.ctx.db.transaction() as session:
                coach = session.get(Person, cohort.coach_id)
                assert coach is not None
                for team in cohort.teams:
                    row = session.get(Team, team.team_id) if team.team_id else None
                    if row is None or not waiting_messages(session, row):
                        continue
                    replies = team.cast.coach_replies
                    text = (
                        replies[team.replies_used]
                        if team.replies_used < len(replies)
                        else DEFAULT_COACH_REPLY
                    )
                    team.replies_used += 1
                    coach_reply(session, coach=coach, team=row, text=text)
                    replied = True
            if replied:
                self.dirty = True
                await self.deliver()

        return round_

    def _rate(self, cohort: CohortRun) -> Callable[[], Awaitable[None]]:
        async def rate() -> None:
            from dash.actions.ratings import rate_team
            from dash.models import Person

            with self.ctx.db.transaction() as session:
                coach = session.get(Person, cohort.coach_id)
                assert coach is not None
                for team in cohort.teams:
                    row = session.get(Team, team.team_id) if team.team_id else None
                    if row is not None:
                        score, comment = team.cast.rating
                        rate_team(session, team=row, score=score, coach=coach, comment=comment)

        return rate

    # -- the scheduler ------------------------------------------------------------------------

    async def tick(self) -> None:
        """A scheduler tick, skipped when nothing is due and nobody did anything since."""
        from scheduler.tick import dispatch

        due = self.next_due is not None and self.next_due <= self.now
        changed = self.dirty and self.now - self.last_dispatch >= RESYNC
        if not (due or changed):
            return
        dispatch(self.ctx, self.now)
        self.dirty = False
        self.last_dispatch = self.now
        with self.ctx.db.transaction() as session:
            self.next_due = session.execute(
                select(func.min(AgendaItem.due_at)).where(
                    AgendaItem.state == AgendaState.PENDING.value
                )
            ).scalar_one()
        await self.deliver()

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> None:
        """From the enrolment morning to noon after the last simulated day."""
        with use_clock(self.clock):
            self.create_cohorts()
            next_tick = self.begin
            day = self.now.date()
            while True:
                event_at = self.events[0][0] if self.events else None
                if next_tick <= self.end and (event_at is None or next_tick <= event_at):
                    self.clock.now = next_tick
                    await self.tick()
                    next_tick += TICK
                elif event_at is not None and event_at <= self.end:
                    when, _, action = heapq.heappop(self.events)
                    self.clock.now = max(when, self.now)
                    await action()
                else:
                    break
                if self.now.date() != day:
                    self._day_done(day)
                    day = self.now.date()
                if self.on_progress is not None:
                    self.on_progress((self.now - self.begin) / (self.end - self.begin))
            self._day_done(day)
            await self.worker.close()

    def _day_done(self, day: date) -> None:
        if self.on_day is not None:
            number = (day - DEMO_START).days + 1
            stage = (
                "enrolment"
                if number <= -BASELINE_DAYS
                else "baseline"
                if number <= 0
                else f"day {number}"
                if number <= self.days
                else "after"
            )
            label = f"{day:%a %d %b} UTC, {stage:>9}"
            counts = self.day_counts
            self.on_day(
                f"{label}: {counts['in']} in, {counts['out']} out"
                + (f", {counts['nudges']} nudges" if counts["nudges"] else "")
            )
        self.day_counts = Counter()


# ---------------------------------------------------------------------------------------------
# Figures, reports and the whole run


def summary_rows(ctx: AppContext, end: datetime) -> list[dict[str, Any]]:
    """One row per team from dash.metrics, as the summary table and the index page show it."""
    from dash.metrics import team_figures
    from dash.models import Membership, Person

    rows: list[dict[str, Any]] = []
    with ctx.db.transaction() as session:
        teams = session.execute(
            select(Team).join(Cohort, Cohort.id == Team.cohort_id).order_by(Cohort.id, Team.id)
        ).scalars()
        for team in teams:
            cohort = team.cohort
            today = local_date(end, cohort.timezone)
            figures = team_figures(session, team, today)
            by_direction = dict(
                session.execute(
                    select(Message.direction, func.count(Message.id))
                    .where(Message.team_id == team.id)
                    .group_by(Message.direction)
                ).all()
            )
            nudges = session.execute(
                select(func.count(Message.id)).where(
                    Message.team_id == team.id,
                    Message.kind.like("nudge%"),
                    Message.status == "sent",
                )
            ).scalar_one()
            opted_out = session.execute(
                select(func.count(func.distinct(Person.id)))
                .join(Membership, Membership.person_id == Person.id)
                .where(Membership.team_id == team.id, Person.opted_out_at.is_not(None))
            ).scalar_one()
            primary = figures.primary
            rows.append(
                {
                    "team_id": team.id,
                    "cohort_id": cohort.id,
                    "team": team.name,
                    "topic": cohort.topic,
                    "timezone": cohort.timezone,
                    "state": team.state,
                    "shares": team.consent_share,
                    "completeness": figures.completeness,
                    "days_with_data": figures.days_with_data,
                    "days_asked": figures.days_asked,
                    "pdsa_started": figures.pdsa_started,
                    "pdsa_finished": figures.pdsa_finished,
                    "signal": (primary.signal_kind if primary is not None else None) or "",
                    "latest": figures.latest_value,
                    "goal": figures.goal,
                    "nudges": int(nudges),
                    "messages_in": int(by_direction.get("in", 0)),
                    "messages_out": int(by_direction.get("out", 0)),
                    "opted_out": int(opted_out),
                }
            )
    return rows


def write_reports(ctx: AppContext, end: datetime, out_dir: Path) -> list[Path]:
    """The cohort reports of dash.report, one HTML file per cohort."""
    from dash.report import write_report

    for stale in out_dir.glob("cohort-*-report-*.html"):
        stale.unlink()  # an earlier demo's reports, which the new index would not list
    paths: list[Path] = []
    with ctx.db.transaction() as session:
        for cohort in session.execute(select(Cohort).order_by(Cohort.id)).scalars():
            today = local_date(end, cohort.timezone)
            paths.append(write_report(session, cohort.id, out_dir, today=today))
    return paths


def write_index(
    out_dir: Path, reports: list[Path], rows: list[dict[str, Any]], result_facts: dict[str, Any]
) -> Path:
    """index.html: the demo's overview linking each cohort report (template demo_index.html)."""
    from dash.texts import web_env

    with_links = []
    for row in rows:
        report = next(
            (p for p in reports if p.name.startswith(f"cohort-{row['cohort_id']}-")), None
        )
        with_links.append({**row, "report": report.name if report else ""})
    html = (
        web_env()
        .get_template("demo_index.html")
        .render(rows=with_links, reports=[p.name for p in reports], **result_facts)
    )
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path.resolve()


def prepare_database(db_path: Path) -> str:
    """A fresh, migrated SQLite database at `db_path` (an older demo database is replaced)."""
    from dash import migrate
    from dash.db import Database

    db_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    db = Database(url)
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()
    return url


def run_demo(
    db_path: Path,
    *,
    seed: int = 1,
    days: int = 14,
    on_day: Callable[[str], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> DemoResult:
    """Simulate the Dash into a fresh database at `db_path`; reports go beside it.

    `on_day` gets a line per simulated day, `on_progress` the share of simulated time done
    after each event, `on_stage` a line as each step (simulation, reports) starts.
    """
    from dash.db import Database
    from dash.settings import get_settings

    def stage(text: str) -> None:
        if on_stage is not None:
            on_stage(text)

    started = timer.perf_counter()
    db_path = db_path.resolve()
    url = prepare_database(db_path)
    settings = get_settings().model_copy(update={"database_url": url})
    db = Database(url)
    out_dir = db_path.parent
    transcript_path = out_dir / "transcript.txt"
    try:
        ctx = AppContext.from_settings(settings, db)
        with transcript_path.open("w", encoding="utf-8") as transcript:
            sim = Simulation(
                ctx,
                seed=seed,
                days=days,
                transcript=transcript,
                on_day=on_day,
                on_progress=on_progress,
            )
            stage(
                f"simulating {sim.begin:%a %d %b} to {sim.end:%a %d %b %Y} (UTC): enrolment, "
                f"{BASELINE_DAYS} baseline days and {days} Dash day{'s' if days > 1 else ''}"
            )
            asyncio.run(sim.run())
        stage("writing the cohort reports and their run charts")
        rows = summary_rows(ctx, sim.end)
        report_dir = out_dir / "report"
        with use_clock(lambda: sim.end):
            reports = write_reports(ctx, sim.end, report_dir)
        elapsed = timer.perf_counter() - started
        facts = {
            "simulated_from": to_local(sim.begin, "UTC"),
            "simulated_to": to_local(sim.end, "UTC"),
            "seed": seed,
            "days": days,
            "elapsed": elapsed,
            "generated": datetime.now(UTC),
        }
        index = write_index(report_dir, reports, rows, facts)
    finally:
        db.dispose()
    return DemoResult(
        db_path=db_path,
        report_paths=reports,
        index_path=index,
        transcript_path=transcript_path.resolve(),
        elapsed_seconds=timer.perf_counter() - started,
        simulated_from=sim.begin,
        simulated_to=sim.end,
        inbound=sim.inbound,
        delivered=sim.delivered,
        rows=rows,
    )


__all__ = ["DemoResult", "Simulation", "run_demo", "summary_rows"]
