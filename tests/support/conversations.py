"""The conversation corpus: scripted YAML conversations run through the real engine.

A file under tests/conversations/ says who sends what and what must come back (the format is
documented in tests/conversations/README.md). `load` reads one; `run` plays it through
tests.support.engine's `Chat` (handle_inbound and the outbox rows it queues) on a clock of its
own that starts at the suite's "now" and only moves when a `wait:` step says so, running the
scheduler's dispatch at the new instant so due prompts go out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bots import registry
from bots.console.chat import ConsoleMessage, format_message
from dash.actions.queueing import BUDGET_KINDS as SCHEDULED_KINDS
from dash.context import AppContext
from dash.models import Cohort, Measure, MeasureValue, Message, PendingQuestion, Team
from dash.queries.people import person_for
from dash.sms import sms_segments
from dash.timeutil import local_date, local_to_utc, use_clock, utcnow
from scheduler.tick import dispatch
from tests.support.engine import Chat, Reply, add_prompt, make_cohort

CHANNELS = ("sms", "whatsapp", "telegram", "console")
TOP_KEYS = {"title", "covers", "channel", "sends_on", "cohort", "settings", "actors", "given", "steps"}
STEP_KEYS = {"expect", "expect_not", "others", "buttons"}
#: Channels whose messages carry the sender's profile name (SMS only carries the number).
NAMED_CHANNELS = ("telegram", "whatsapp")


class ConversationError(AssertionError):
    """A conversation did not go as its file says; the message names the step and the replies."""


@dataclass
class Actor:
    """A person in a conversation, as they write to the bot."""

    name: str
    address: str
    channel: str
    username: str = ""
    language: str | None = None
    display: str = ""

    @property
    def phone_like(self) -> bool:
        return self.address.startswith("+")


@dataclass
class Conversation:
    """One YAML file, read and checked for shape (not yet run)."""

    path: Path
    title: str
    covers: str
    channel: str
    cohort: dict[str, Any]
    actors: dict[str, Actor]
    given: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    #: The channels the deployment sends on (None: any, and no reply windows).
    sends_on: tuple[str, ...] | None = None
    #: Deployment settings for this conversation (`DASH_<NAME>`), e.g. daily_message_budget.
    settings: dict[str, Any] = field(default_factory=dict)


def load(path: Path) -> Conversation:
    """Read and validate a conversation file (unknown keys are errors, not silently ignored)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConversationError(f"{path}: unknown top-level keys {sorted(unknown)}")
    for key in ("title", "covers", "actors", "steps"):
        if key not in data:
            raise ConversationError(f"{path}: missing `{key}`")
    channel = data.get("channel", "sms")
    if channel not in CHANNELS:
        raise ConversationError(f"{path}: channel {channel!r} is not one of {CHANNELS}")
    actors = {}
    for name, spec in data["actors"].items():
        spec = spec or {}
        actor_channel = spec.get("channel", channel)
        if actor_channel not in CHANNELS:
            raise ConversationError(f"{path}: actor {name}: unknown channel {actor_channel!r}")
        if "address" not in spec:
            raise ConversationError(f"{path}: actor {name} has no address")
        actors[name] = Actor(
            name=name,
            address=str(spec["address"]),
            channel=actor_channel,
            username=str(spec.get("username", "")).lstrip("@"),
            language=spec.get("language"),
            display=str(spec.get("name", name.replace("_", " ").title())),
        )
    return Conversation(
        path=path,
        title=str(data["title"]),
        covers=str(data["covers"]),
        channel=channel,
        cohort=dict(data.get("cohort") or {}),
        actors=actors,
        given=list(data.get("given") or []),
        steps=list(data["steps"]),
        sends_on=_sends_on(path, data.get("sends_on")),
        settings=dict(data.get("settings") or {}),
    )


def _sends_on(path: Path, value: Any) -> tuple[str, ...] | None:
    """`sends_on: [whatsapp, sms]`: the deployment's channels (the console is always on)."""
    if value is None:
        return None
    names = tuple(str(v) for v in (value if isinstance(value, list) else [value]))
    unknown = set(names) - set(CHANNELS)
    if unknown:
        raise ConversationError(f"{path}: sends_on names unknown channels {sorted(unknown)}")
    return (*names, "console") if "console" not in names else names


class SteppingClock:
    """Stands still at the start instant; `advance` moves it (a conversation's own time)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CLOCK_TIME = re.compile(r"^\s*(?:to|until)\s+(\d{1,2}):(\d{2})\s*$")


@dataclass
class Runner:
    """Plays one conversation; holds what the checks need (the cohort, the team, the replies)."""

    ctx: AppContext
    conv: Conversation
    clock: SteppingClock
    chat: Chat = field(init=False)
    cohort: Cohort = field(init=False)
    team_id: int | None = None
    last: dict[str, list[Reply]] = field(default_factory=dict)
    step_label: str = "given"

    def __post_init__(self) -> None:
        self.chat = Chat(self.ctx)

    # -- talking -----------------------------------------------------------------------------

    def actor(self, name: str) -> Actor:
        try:
            return self.conv.actors[name]
        except KeyError:
            raise self.fail(f"no actor called {name!r} (actors: {sorted(self.conv.actors)})")

    def fill(self, text: str) -> str:
        """`{code}` and `{team_code}` in a message become the cohort's and the team's codes."""
        if "{team_code}" in text:
            text = text.replace("{team_code}", self.team().join_code)
        return text.replace("{code}", self.cohort.enrolment_code)

    def send(self, who: Actor, what: str | dict[str, Any]) -> None:
        if isinstance(what, dict):
            unknown = set(what) - {"text", "press"}
            if unknown:
                raise self.fail(f"a message takes `text` or `press`, not {sorted(unknown)}")
            text, press = self.fill(str(what.get("text", ""))), what.get("press")
        else:
            text, press = self.fill(str(what)), None
        self.chat.send(
            who.address,
            text,
            channel=who.channel,
            sender=who.address,
            language=who.language,
            callback_data=str(press) if press is not None else None,
            sender_name=who.display if who.channel in NAMED_CHANNELS else "",
            raw=_raw(who, text, press),
        )

    def collect(self) -> dict[str, list[Reply]]:
        """Every actor's new replies since the last collection; a held message (the identical
        cap or the daily budget kept it back) is not one: nobody reads it."""
        self.last = {
            name: [r for r in self.chat.replies(a.address, a.channel) if not r.held]
            for name, a in self.conv.actors.items()
        }
        return self.last

    def said(self, name: str) -> str:
        """What `name` read in this step: on the console, as the terminal shows it (buttons
        and images as hints); elsewhere the texts."""
        replies = self.last.get(name, [])
        if self.actor(name).channel == "console":
            return "\n".join(
                format_message(ConsoleMessage(r.address, r.text, r.payload)) for r in replies
            )
        return "\n".join(r.text for r in replies)

    def say(self, who: Actor, text: str) -> str:
        self.send(who, text)
        self.collect()
        return self.said(who.name)

    # -- state -------------------------------------------------------------------------------

    def team(self) -> Team:
        """The conversation's team: the one `given` enrolled, else the cohort's newest."""
        with self.ctx.db.transaction() as s:
            if self.team_id is not None:
                team = s.get(Team, self.team_id)
            else:
                team = (
                    s.execute(
                        select(Team)
                        .where(Team.cohort_id == self.cohort.id)
                        .order_by(Team.id.desc())
                    )
                    .scalars()
                    .first()
                )
            if team is None:
                raise self.fail("no team exists yet in this conversation's cohort")
            s.expunge(team)
            return team

    def today(self) -> date:
        return local_date(utcnow(), self.cohort.timezone)

    def day(self, spec: Any) -> date:
        if spec in (None, "today"):
            return self.today()
        if spec == "yesterday":
            return self.today() - timedelta(days=1)
        try:
            return date.fromisoformat(str(spec))
        except ValueError:
            raise self.fail(f"day {spec!r}: use today, yesterday or YYYY-MM-DD")

    def measure_key(self, spec: Any) -> str:
        """`primary`, a measure's key, or its number in the curriculum's order (1 = first)."""
        with self.ctx.db.transaction() as s:
            measures = list(
                s.execute(
                    select(Measure).where(Measure.cohort_id == self.cohort.id).order_by(Measure.id)
                ).scalars()
            )
        keys = [m.key for m in measures]
        if spec in (None, "primary"):
            return next(m.key for m in measures if m.primary)
        if isinstance(spec, int) and 1 <= spec <= len(measures):
            return measures[spec - 1].key
        if spec in keys:
            return str(spec)
        raise self.fail(f"measure {spec!r}: use primary, a number 1-{len(keys)} or one of {keys}")

    def person_id(self, name: str) -> int | None:
        who = self.actor(name)
        with self.ctx.db.transaction() as s:
            person = person_for(s, who.channel, who.address)
            return person.id if person is not None else None

    # -- failure -----------------------------------------------------------------------------

    def fail(self, what: str) -> ConversationError:
        lines = [f"{self.conv.path.name} ({self.conv.title}), {self.step_label}: {what}"]
        for name, replies in self.last.items():
            if replies:
                lines.append(f"  replies to {name}:")
                for reply in replies:
                    lines.extend(f"    | {line}" for line in reply.text.splitlines())
                    labels = [b.get("text") for row in reply.payload.get("buttons") or [] for b in row]
                    if labels:
                        lines.append(f"    [buttons: {' | '.join(map(str, labels))}]")
        if not any(self.last.values()):
            lines.append("  (no replies in this step)")
        return ConversationError("\n".join(lines))


def _raw(who: Actor, text: str, press: Any) -> dict[str, Any]:
    """The provider payload a Telegram user's message carries (username, language); others
    carry only the text."""
    if who.channel != "telegram":
        return {"text": text}
    sender: dict[str, Any] = {"id": _int_or(who.address), "first_name": who.display}
    if who.username:
        sender["username"] = who.username
    if who.language:
        sender["language_code"] = who.language
    chat = {"id": _int_or(who.address), "type": "private"}
    if press is not None:
        return {"callback_query": {"from": sender, "data": str(press), "message": {"chat": chat}}}
    return {"message": {"from": sender, "chat": chat, "text": text}}


def _int_or(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


# -- given ------------------------------------------------------------------------------------


def _given_enrolled(r: Runner, spec: dict[str, Any]) -> None:
    """The whole enrolment by chat on the actors' own channels, approved by the leader."""
    kc, leader = r.actor(spec["key_contact"]), r.actor(spec["leader"])
    asked = r.say(kc, f"JOIN {r.cohort.enrolment_code}")
    if "name" in asked.lower():
        r.say(kc, kc.display)
    r.say(kc, spec.get("hospital", "St Mary's Hospital"))
    r.say(kc, spec.get("unit", "5 West"))
    for score in ("5", "4", "3", "4", "5"):
        r.say(kc, score)
    r.say(kc, spec.get("sponsor", "Ana Ruiz, Chief Nursing Officer"))
    if leader is kc:
        r.say(kc, "me")
    else:
        r.say(kc, f"@{leader.username}" if leader.username else leader.address)
        if leader.channel == "telegram":  # named by @username: found when they open the bot
            r.say(leader, "/start")
        r.say(leader, "YES")
    kc_id = r.person_id(kc.name)
    with r.ctx.db.transaction() as s:
        team = (
            s.execute(
                select(Team)
                .where(Team.key_contact_id == kc_id, Team.cohort_id == r.cohort.id)
                .order_by(Team.id.desc())
            )
            .scalars()
            .first()
        )
        if team is None or team.state != "enrolled":
            raise r.fail(f"`enrolled` did not enrol a team (state: {team and team.state})")
        r.team_id = team.id
    r.collect()


def _given_joined(r: Runner, spec: dict[str, Any]) -> None:
    """The actor joins the conversation's team with its join code, giving a name if asked."""
    who = r.actor(spec["actor"])
    asked = r.say(who, f"JOIN {r.team().join_code}")
    if "name" in asked.lower():
        r.say(who, who.display)
    r.collect()


def _given_prompt(r: Runner, spec: dict[str, Any]) -> None:
    add_prompt(r.ctx, r.team(), r.measure_key(spec.get("measure")), r.day(spec.get("day")))


GIVEN: dict[str, Callable[[Runner, dict[str, Any]], None]] = {
    "enrolled": _given_enrolled,
    "joined": _given_joined,
    "prompt": _given_prompt,
}


# -- checks -----------------------------------------------------------------------------------


def _check_flagged_for_coach(r: Runner, want: Any) -> None:
    """True: a message waits for the coach on the team's thread (false: none does); a string:
    a waiting message contains it."""
    with r.ctx.db.transaction() as s:
        query = select(Message.text).where(Message.needs_reply.is_(True))
        team_id = r.team_id or _newest_team_id(r, s)
        if team_id is not None:
            query = query.where(Message.team_id == team_id)
        waiting = list(s.execute(query).scalars())
    if isinstance(want, str):
        if not any(want.lower() in (t or "").lower() for t in waiting):
            raise r.fail(f"expected a message with {want!r} waiting for the coach; waiting: {waiting}")
    elif bool(want) != bool(waiting):
        raise r.fail(
            f"expected flagged_for_coach: {bool(want)}; messages waiting for the coach: {waiting}"
        )


def _newest_team_id(r: Runner, s: Any) -> int | None:
    return s.execute(
        select(Team.id).where(Team.cohort_id == r.cohort.id).order_by(Team.id.desc())
    ).scalars().first()


def _check_team_state(r: Runner, want: Any) -> None:
    state = r.team().state
    if state != want:
        raise r.fail(f"expected the team's state {want!r}, it is {state!r}")


def _check_value(r: Runner, want: Any) -> None:
    """A measure's current value for a day: numerator, denominator, who sent it; or absent."""
    if not isinstance(want, dict):
        raise r.fail("value takes {measure, day, numerator, denominator, by} or {absent: true}")
    key, day, team = r.measure_key(want.get("measure")), r.day(want.get("day")), r.team()
    with r.ctx.db.transaction() as s:
        row = s.execute(
            select(MeasureValue)
            .join(Measure, Measure.id == MeasureValue.measure_id)
            .where(
                MeasureValue.team_id == team.id,
                Measure.key == key,
                MeasureValue.day == day,
                MeasureValue.is_current.is_(True),
            )
        ).scalar_one_or_none()
        got = None if row is None else (row.numerator, row.denominator, row.reported_by_id)
    where = f"{key} on {day}"
    if want.get("absent"):
        if got is not None:
            raise r.fail(f"expected no value for {where}, found {got[0]}/{got[1]}")
        return
    if got is None:
        raise r.fail(f"expected a value for {where}, none is recorded")
    for i, name in ((0, "numerator"), (1, "denominator")):
        if name in want and got[i] != int(want[name]):
            raise r.fail(f"expected {where} = {want.get('numerator')}/{want.get('denominator')}, "
                         f"recorded {got[0]}/{got[1]}")
    if "by" in want and got[2] != r.person_id(want["by"]):
        raise r.fail(f"expected {where} sent by {want['by']}, it was person #{got[2]}")


def _check_pending(r: Runner, want: Any) -> None:
    """{actor: flow}: the question flow the bot waits on that actor for (`none`: nothing)."""
    if not isinstance(want, dict):
        raise r.fail("pending takes {actor: flow or none}")
    for name, flow in want.items():
        person_id = r.person_id(name)
        with r.ctx.db.transaction() as s:
            row = s.execute(
                select(PendingQuestion).where(PendingQuestion.person_id == person_id)
            ).scalar_one_or_none()
            got = None if row is None or row.flow == "idle" else f"{row.flow}:{row.step}"
        wanted = None if flow in (None, "none") else str(flow)
        if wanted is None and got is not None:
            raise r.fail(f"expected nothing pending for {name}, the bot waits on {got}")
        if wanted is not None and (got is None or not (got == wanted or got.startswith(wanted + ":"))):
            raise r.fail(f"expected {name}'s pending question {wanted!r}, it is {got!r}")


def _check_held(r: Runner, want: Any) -> None:
    """How many messages of this conversation the identical-message cap held: they reach
    nobody (only the Admin page lists them), so a reply held is a person left unanswered."""
    with r.ctx.db.transaction() as s:
        held = list(
            s.execute(
                select(Message.address, Message.text).where(
                    Message.direction == "out", Message.status == "held"
                )
            ).all()
        )
    if len(held) != int(want):
        raise r.fail(f"expected {int(want)} held message(s), found {len(held)}: {held}")




def _check_received(r: Runner, want: Any) -> None:
    """{actor, day?, kind?, count?, at_most?, held?}: the scheduled messages the actor got on a
    day (the cohort's zone; default today), of `kind` (a prefix: `nudge`) if given; `held`:
    how many more were held back (kept in the team's thread for the coach, never sent)."""
    if not isinstance(want, dict) or "actor" not in want:
        raise r.fail("received takes {actor, day, kind, count, at_most, held}")
    from dash.models import OutboxItem

    person_id, day, tz = r.person_id(want["actor"]), r.day(want.get("day")), r.cohort.timezone
    start = local_to_utc(day, time(0), tz)
    end = local_to_utc(day + timedelta(days=1), time(0), tz)
    with r.ctx.db.transaction() as s:
        rows = s.execute(
            select(Message.kind, OutboxItem.state, OutboxItem.last_error)
            .join(OutboxItem, OutboxItem.message_id == Message.id)
            .where(
                Message.person_id == person_id,
                Message.direction == "out",
                Message.kind.in_(SCHEDULED_KINDS),
                Message.created_at >= start,
                Message.created_at < end,
            )
            .order_by(Message.id)
        ).all()
    rows = [row for row in rows if row[0].startswith(str(want.get("kind", "")))]
    sent = [kind for kind, state, _ in rows if state != "held"]
    held = [(kind, error) for kind, state, error in rows if state == "held"]
    seen = f"{want['actor']} on {day}: sent {sent}, held {held}"
    if "count" in want and len(sent) != int(want["count"]):
        raise r.fail(f"expected {want['count']} scheduled message(s) to {seen}")
    if "at_most" in want and len(sent) > int(want["at_most"]):
        raise r.fail(f"expected at most {want['at_most']} scheduled message(s) to {seen}")
    if "held" in want and len(held) != int(want["held"]):
        raise r.fail(f"expected {want['held']} held back for the coach: {seen}")


CHECKS: dict[str, Callable[[Runner, Any], None]] = {
    "received": _check_received,
    "held": _check_held,
    "flagged_for_coach": _check_flagged_for_coach,
    "team_state": _check_team_state,
    "value": _check_value,
    "pending": _check_pending,
}


# -- steps ------------------------------------------------------------------------------------


def _expectations(r: Runner, name: str, expect: Any, expect_not: Any) -> None:
    text = r.said(name)
    for phrase in _as_list(expect):
        if str(phrase).lower() not in text.lower():
            raise r.fail(f"expected {name} to get {phrase!r}")
    for phrase in _as_list(expect_not):
        if str(phrase).lower() in text.lower():
            raise r.fail(f"{name} must not get {phrase!r}")


def _buttons(r: Runner, name: str, want: Any) -> None:
    """The labels of every button in the step's replies to `name`, in order, are `want`."""
    got = [
        str(button.get("text", ""))
        for reply in r.last.get(name, [])
        for row in reply.payload.get("buttons") or []
        for button in row
        if isinstance(button, dict)
    ]
    if got != [str(label) for label in _as_list(want)]:
        raise r.fail(f"expected {name}'s buttons {_as_list(want)}, got {got}")


def _others(r: Runner, others: Any) -> None:
    if not isinstance(others, dict):
        raise r.fail("others takes {actor: [phrases]}")
    for name, phrases in others.items():
        r.actor(name)
        if phrases == [] and r.last.get(name):
            raise r.fail(f"expected no replies to {name}")
        if isinstance(phrases, dict):
            _expectations(r, name, phrases.get("expect"), phrases.get("expect_not"))
        else:
            _expectations(r, name, phrases, None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wait(r: Runner, spec: Any) -> None:
    """Move the clock on (`2h`, `30m`, `1d`, or `to 09:00` in the cohort's zone) and dispatch."""
    text = str(spec)
    if m := _DURATION.match(text):
        delta = timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    elif m := _CLOCK_TIME.match(text):
        tz = r.cohort.timezone
        day = r.today()
        target = local_to_utc(day, time(int(m.group(1)), int(m.group(2))), tz)
        if target <= utcnow():
            target = local_to_utc(day + timedelta(days=1), time(int(m.group(1)), int(m.group(2))), tz)
        delta = target - utcnow()
    else:
        raise r.fail(f"wait {spec!r}: use 90s, 30m, 2h, 1d or 'to HH:MM'")
    # Dispatch once an hour of the wait (as the ticker would), so daily rows fire on their day.
    end = utcnow() + delta
    while utcnow() < end:
        r.clock.advance(min(timedelta(hours=1), end - utcnow()))
        dispatch(r.ctx, utcnow())


def _step(r: Runner, index: int, step: dict[str, Any]) -> None:
    if not isinstance(step, dict):
        raise r.fail(f"a step is a mapping, got {step!r}")
    kinds = [k for k in step if k not in STEP_KEYS]
    if len(kinds) != 1:
        raise r.fail(f"a step needs exactly one of an actor, wait, check, max_sms_segments; got {kinds}")
    kind = kinds[0]
    r.step_label = f"step {index + 1} ({kind}: {step[kind]!r})"
    if kind in ("check", "max_sms_segments") and set(step) & STEP_KEYS:
        raise r.fail(f"{kind} takes no expect/expect_not/others; put them on the step before")
    if kind == "wait" and set(step) & {"expect", "expect_not"}:
        raise r.fail("after a wait, say who gets what with others: {actor: [...]}")
    if kind == "max_sms_segments":
        for name, replies in r.last.items():
            for reply in replies:
                n = sms_segments(reply.text)
                if n > int(step[kind]):
                    raise r.fail(f"a reply to {name} takes {n} SMS segments (max {step[kind]}): "
                                 f"{reply.text!r}")
        return
    if kind == "check":
        for name, want in (step[kind] or {}).items():
            if name not in CHECKS:
                raise r.fail(f"unknown check {name!r} (known: {sorted(CHECKS)})")
            CHECKS[name](r, want)
        return
    if kind == "wait":
        _wait(r, step[kind])
        r.collect()
    else:
        r.send(r.actor(kind), step[kind])
        r.collect()
        _expectations(r, kind, step.get("expect"), step.get("expect_not"))
        if "buttons" in step:
            _buttons(r, kind, step["buttons"])
    if "others" in step:
        _others(r, step["others"])


@contextmanager
def _conversation_clock() -> Iterator[SteppingClock]:
    start = utcnow().astimezone(UTC).replace(microsecond=0)
    clock = SteppingClock(start)
    with use_clock(clock):
        yield clock


@contextmanager
def _settings(values: dict[str, Any]) -> Iterator[None]:
    """The conversation's `settings`, as a deployment sets them (DASH_<NAME>), then back."""
    import os

    from dash.settings import get_settings

    names = {f"DASH_{key.upper()}": str(value) for key, value in values.items()}
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def run(ctx: AppContext, conv: Conversation) -> Runner:
    """Play `conv` against `ctx` (a fresh database); raises ConversationError on a mismatch."""
    with _conversation_clock() as clock, _settings(conv.settings):
        if conv.sends_on is not None:
            # As dash.app wires a deployment: its channels and their reply windows.
            ctx.channels = conv.sends_on
            ctx.reply_windows = registry.reply_windows(conv.sends_on)
        r = Runner(ctx, conv, clock)
        r.cohort = make_cohort(
            ctx, topic=conv.cohort.get("topic", "opioid-safety"), tz=conv.cohort.get("timezone", "UTC")
        )
        for index, item in enumerate(conv.given):
            if not isinstance(item, dict) or len(item) != 1:
                raise r.fail(f"given item {index + 1} must be one key, got {item!r}")
            ((key, spec),) = item.items()
            if key not in GIVEN:
                raise r.fail(f"unknown given {key!r} (known: {sorted(GIVEN)})")
            r.step_label = f"given {index + 1} ({key})"
            GIVEN[key](r, spec or {})
        r.last = {}
        for index, step in enumerate(conv.steps):
            _step(r, index, step)
        return r
