"""Rendering each kind of agenda step into outbox rows, in the recipient's language.

Texts come from the curriculum (`messages.<kind>`, rendered with the variables documented in
curricula/README.md) and from dash/templates/messages for the few sentences that are not
curriculum content (date labels, signal sentences, digest reasons). Every outbound row gets the
dedupe key `agenda:<row id>:<recipient>`, so running a step twice (a reclaimed row after a
crash) cannot queue a second copy. Conditional steps decide at their due time: a daily prompt
whose data already arrived, a nudge whose data arrived, a PDSA follow-up for a cycle already
reported all finish silently with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dash.actions.pdsa import ask_followup
from dash.actions.queueing import Draft, queue_many, queue_message
from dash.context import AppContext
from dash.curriculum import Curriculum, load_curriculum
from dash.metrics import TeamFigures, team_figures
from dash.models import (
    AgendaItem,
    AgendaState,
    Aim,
    Cohort,
    Measure,
    MeasureValue,
    Membership,
    PdsaCycle,
    PdsaState,
    Person,
    Priority,
    Role,
    Team,
    TeamState,
)
from dash.queries.recipients import Recipient, address_for, team_people, team_recipients
from dash.reach import enabled_channels
from dash.schedule import asked_days, last_day
from dash.texts import language_of, render

#: Rows of these kinds need the data of the day they are about.
DATA_KINDS = ("daily_prompt", "nudge")
#: Kinds `run_batch` renders set-wise: thousands fall due at one instant, and their renderer
#: does not branch on whether a message was queued.
BATCHED_KINDS = ("daily_prompt",)


@dataclass
class StepOutcome:
    """What running one row did: messages queued (nudges among them) and a note for the row."""

    queued: int = 0
    nudges: int = 0
    note: str | None = None
    kinds: list[str] = field(default_factory=list)


@dataclass
class StepRun:
    """Everything a step renderer needs, loaded once per row."""

    session: Session
    ctx: AppContext
    row: AgendaItem
    now: datetime
    cohort: Cohort
    curriculum: Curriculum
    team: Team | None
    outcome: StepOutcome = field(default_factory=StepOutcome)
    # Preloaded by run_batch for a whole batch; None: read from the database when needed.
    members: set[int] | None = None
    preloaded_reporters: list[Person] | None = None
    values: set[tuple[int, int, date]] | None = None
    #: When set, `send` collects drafts here for run_batch to queue together.
    drafts: list[Draft] | None = None
    #: Texts rendered once per batch and reused: the same date label, title and measure
    #: wording go to thousands of teams, and rendering dominates a batched prompt's cost.
    memo: dict[tuple[Any, ...], Any] | None = None

    def remember(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """`make()`, computed once per batch for `key` (every time outside a batch)."""
        if self.memo is None:
            return make()
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    # -- recipients ----------------------------------------------------------------------------

    def team_language(self) -> str:
        team = self.team
        contact = team.key_contact if team is not None else None
        return language_of(contact.language if contact is not None else None)

    def recipients(self, people: list[Person], *, group: bool = True) -> list[Recipient]:
        """The group chat (when the team has one) and each person not reached through it."""
        team = self.team
        assert team is not None
        members = self.members
        if members is None:
            members = set(
                self.session.execute(
                    select(Membership.person_id).where(Membership.team_id == team.id)
                ).scalars()
            )
        return team_recipients(
            team,
            people,
            group_lang=self.team_language,
            members=members,
            group=group,
            enabled=enabled_channels(self.ctx),
        )

    def reporters(self) -> list[Person]:
        """The team's data reporters, else its key contact."""
        team = self.team
        assert team is not None
        if self.preloaded_reporters is not None:
            return self.preloaded_reporters
        people = team_people(self.session, team, (Role.DATA_REPORTER.value,))
        if people:
            return people
        if team.key_contact is not None and not team.key_contact.opted_out:
            return [team.key_contact]
        return team_people(self.session, team, (Role.KEY_CONTACT.value,))

    # -- rendering and queueing ----------------------------------------------------------------

    def coach_name(self) -> str:
        coaches = sorted(self.cohort.coaches, key=lambda c: c.id)
        return coaches[0].name if coaches else ""

    def base_context(self, recipient: Recipient) -> dict[str, Any]:
        team = self.team
        assert team is not None
        return {
            "team_name": team.name,
            "unit_name": team.unit.name,
            "recipient_name": recipient.name,
            "coach_name": self.coach_name(),
            "topic_title": self.remember(
                ("topic_title", self.curriculum.topic, recipient.lang),
                lambda: self.curriculum.title.render(recipient.lang),
            ),
        }

    def send(
        self,
        recipient: Recipient,
        kind: str,
        context: dict[str, Any],
        *,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Render `kind` for `recipient` and queue it (BULK, deduplicated per row and person).

        In a batch (`drafts` set) the message is only collected and True returned; run_batch
        queues and counts it, so only renderers that ignore the result are batched."""
        text = self.curriculum.render_message(kind, recipient.lang, **context)  # type: ignore[arg-type]
        extra = dict(payload or {})
        person = recipient.person
        if person is None:
            who = "group"
        else:
            who = f"p{person.id}"
            # The provider's pre-approved form of this step, for a channel that needs one
            # outside its reply window (WhatsApp); other channels' senders ignore it.
            template = self.curriculum.whatsapp_templates.get(kind)  # type: ignore[call-overload]
            if template is not None:
                extra["template"] = {
                    "content_sid": template.sid_for(recipient.lang),
                    "variables": template.content_variables(context),
                }
        draft = Draft(
            channel=recipient.channel,
            address=recipient.address,
            text=text,
            person=person,
            team_id=self.team.id if self.team is not None else None,
            priority=Priority.BULK,
            kind=kind,
            dedupe_key=f"agenda:{self.row.id}:{who}:{kind}",
            payload=extra,
        )
        if self.drafts is not None:
            self.drafts.append(draft)
            return True
        if not queue_many(self.session, [draft])[0]:
            return False
        self.outcome.queued += 1
        self.outcome.kinds.append(kind)
        return True

    def date_label(self, day: date, lang: str) -> str:
        return str(
            self.remember(
                ("date_label", day, lang), lambda: render("agenda_date_label", lang, day=day)
            )
        )

    def measure_texts(self, key: str, lang: str, date_label: str, team_name: str) -> dict[str, str]:
        """A measure's rendered name and definitions, and its daily question (`measure_prompt`)
        as `MeasureDefinition.render_prompt` renders it.

        In a batch each is rendered once per language and day, and once per team only when
        its text uses the team's name (the question usually does, the definitions do not)."""
        definition = self.curriculum.measure(key)

        def uses_team(name: str, text: Any) -> bool:
            return bool(
                self.remember(
                    ("uses_team_name", self.curriculum.topic, key, name),
                    lambda: "team_name" in text.variables(),
                )
            )

        base = ("measure", self.curriculum.topic, key, lang)
        texts = (definition.name, definition.numerator, definition.denominator)
        team_key = team_name if any(uses_team(str(i), t) for i, t in enumerate(texts)) else None
        rendered: dict[str, str] = dict(
            self.remember(
                (*base, "definitions", team_key),
                lambda: definition.as_context(lang, team_name=team_name),
            )
        )
        prompt_key = team_name if team_key or uses_team("prompt", definition.prompt) else None
        rendered["measure_prompt"] = self.remember(
            (*base, "prompt", date_label, prompt_key),
            lambda: definition.prompt.render(
                lang, date_label=date_label, team_name=team_name, **rendered
            ),
        )
        return rendered

    def measures(self) -> list[Measure]:
        return list(self.cohort.measures)  # ordered by position; loaded once per batch

    def has_value(self, measure: Measure, day: date) -> bool:
        assert self.team is not None
        if self.values is not None:
            return (self.team.id, measure.id, day) in self.values
        return (
            self.session.execute(
                select(MeasureValue.id).where(
                    MeasureValue.team_id == self.team.id,
                    MeasureValue.measure_id == measure.id,
                    MeasureValue.day == day,
                    MeasureValue.is_current.is_(True),
                )
            ).first()
            is not None
        )


# ---------------------------------------------------------------------------------------------
# One function per step kind


def _session_step(run: StepRun) -> None:
    assert run.team is not None
    number = int(run.row.payload["session"])
    session_def = run.curriculum.session(number)
    for recipient in run.recipients(team_people(run.session, run.team)):
        context = run.base_context(recipient)
        context["session"] = session_def.as_context(recipient.lang)
        if run.row.kind == "session_reminder":
            # No link yet: the reminder leaves the line out rather than promise one.
            context["join_link"] = run.cohort.join_link or ""
            context["start_time_local"] = run.row.payload["start"]
        run.send(recipient, run.row.kind, context)


def _daily_prompt(run: StepRun) -> None:
    day = date.fromisoformat(run.row.payload["day"])
    key = run.row.payload["measure"]
    measure = next((m for m in run.measures() if m.key == key), None)
    if measure is None:
        run.outcome.note = f"measure {key} is not part of this cohort"
        return
    if run.has_value(measure, day):
        run.outcome.note = "data already in; no prompt needed"
        return
    team = run.team
    assert team is not None
    for recipient in run.recipients(run.reporters()):
        context = run.base_context(recipient)
        label = run.date_label(day, recipient.lang)
        texts = run.measure_texts(key, recipient.lang, label, team.name)
        context.update(texts)
        context["date_label"] = label
        context["measure_prompt"] = texts["measure_prompt"]
        # The engine reads this to know which measure and day an "N/D" answer is for.
        run.send(
            recipient,
            "daily_prompt",
            context,
            payload={"prompt": {"measure": key, "day": day.isoformat()}},
        )


def missed_days_up_to(run: StepRun, day: date, measures: list[Measure]) -> int:
    """Consecutive days ending at `day` that were asked (a prompt went out) and on which some
    measure still has no data. A day nobody was asked about ends the streak."""
    assert run.team is not None
    prompted = set(
        run.session.execute(
            select(AgendaItem.local_day).where(
                AgendaItem.team_id == run.team.id,
                AgendaItem.kind == "daily_prompt",
                AgendaItem.state == AgendaState.DONE.value,
                AgendaItem.local_day <= day,
            )
        ).scalars()
    )
    days = [d for d in asked_days(run.cohort, run.curriculum) if d <= day]
    missed = 0
    for d in reversed(days):
        if d not in prompted or all(run.has_value(m, d) for m in measures):
            break
        missed += 1
    return missed


def _nudge(run: StepRun) -> None:
    """Escalate missing data: reporters each day, the key contact on the 2nd, the leader on
    the 3rd consecutive missed day. Silent when the data is in or no prompt went out."""
    team = run.team
    assert team is not None
    day = date.fromisoformat(run.row.payload["day"])
    measures = run.measures()
    missing = [m for m in measures if not run.has_value(m, day)]
    if not missing:
        run.outcome.note = "data arrived; no nudge needed"
        return
    prompted = run.session.execute(
        select(AgendaItem.id).where(
            AgendaItem.team_id == team.id,
            AgendaItem.kind == "daily_prompt",
            AgendaItem.local_day == day,
            AgendaItem.state == AgendaState.DONE.value,
        )
    ).first()
    if prompted is None:
        run.outcome.note = "no prompt went out for this day; nothing to nudge about"
        return
    missed = missed_days_up_to(run, day, measures)
    reporters = run.reporters()
    reporter_names = ", ".join(p.name for p in reporters if p.name)
    contact = team.key_contact if team.key_contact and not team.key_contact.opted_out else None
    leader = team.leader if team.leader and not team.leader.opted_out else None
    escalate_to: Person | None = None
    escalation_kind = ""
    if missed == 2 and contact is not None:
        escalate_to, escalation_kind = contact, "nudge_key_contact"
    elif missed == 3 and leader is not None:
        escalate_to, escalation_kind = leader, "nudge_leader"

    def measure_names(lang: str) -> dict[str, Any]:
        """The missing measures as a list (the texts put several one a line) and as a phrase
        ("A and B") for a single variable, such as a WhatsApp template's."""
        names = [run.curriculum.measure(m.key).name.render(lang) for m in missing]
        return {
            "measure_names": names,
            "measure_name": render("agenda_measure_list", lang, names=names),
        }

    for recipient in run.recipients(reporters, group=False):
        if escalate_to is not None and recipient.person is escalate_to:
            continue  # they get the escalation, which says more
        context = run.base_context(recipient)
        context.update(
            measure_names(recipient.lang),
            date_label=run.date_label(day, recipient.lang),
            missed_days=missed,
        )
        if run.send(recipient, "nudge_reporter", context):
            run.outcome.nudges += 1
    if escalate_to is not None:
        for recipient in run.recipients([escalate_to], group=False):
            context = run.base_context(recipient)
            context.update(
                measure_names(recipient.lang),
                missed_days=missed,
                reporter_names=reporter_names,
            )
            if escalation_kind == "nudge_key_contact":
                context["date_label"] = run.date_label(day, recipient.lang)
            else:
                context["key_contact_name"] = contact.name if contact is not None else ""
            if run.send(recipient, escalation_kind, context):
                run.outcome.nudges += 1


def _pdsa_followup(run: StepRun) -> None:
    team = run.team
    assert team is not None
    cycle = run.session.get(PdsaCycle, int(run.row.payload["cycle_id"]))
    if cycle is None or cycle.state != PdsaState.PLANNED.value:
        run.outcome.note = "the cycle was already reported; no follow-up needed"
        return
    creator = run.session.get(Person, cycle.created_by_id) if cycle.created_by_id else None
    people = [creator] if creator is not None else []
    if not people and team.key_contact is not None:
        people = [team.key_contact]
    for recipient in run.recipients(people):
        context = run.base_context(recipient)
        context.update(
            pdsa_cycle=cycle.number,
            pdsa_change=cycle.change_text,
            pdsa_prediction=cycle.prediction,
        )
        run.send(recipient, "pdsa_followup", context)
    if run.outcome.queued:
        # The reply answers "what happened" (Do): the engine then asks Study and Act.
        ask_followup(run.session, cycle)


def _pct(value: float | None) -> int | None:
    return None if value is None else round(value * 100)


def summary_context(run: StepRun, figures: TeamFigures, lang: str) -> dict[str, Any]:
    """The summary variables (curricula/README.md) from a team's figures."""
    team = run.team
    assert team is not None
    primary = figures.primary
    definition = run.curriculum.primary_measure
    measure_name = definition.name.render(lang)
    goal = primary.goal if primary is not None and primary.goal is not None else definition.goal
    baseline = primary.baseline if primary is not None else None
    recent = primary.recent if primary is not None else None
    signal_text = ""
    if primary is not None and primary.signal:
        improving = None
        if baseline is not None and recent is not None and baseline != recent:
            improving = (recent > baseline) == (primary.better == "higher")
        signal_text = render("agenda_signal", lang, signal=primary.signal_kind, improving=improving)
    aim = (
        run.session.execute(
            select(Aim).where(Aim.team_id == team.id).order_by(Aim.created_at.desc(), Aim.id.desc())
        )
        .scalars()
        .first()
    )
    aim_text = (
        aim.text
        if aim is not None
        else run.curriculum.render_aim(
            lang,
            goal_pct=_pct(goal),
            measure_name=measure_name,
            end_date=run.date_label(last_day(run.cohort, run.curriculum), lang),
            unit_name=team.unit.name,
            baseline_pct=_pct(baseline),
        )
    )
    return {
        "measure_name": measure_name,
        "completeness_pct": _pct(figures.completeness) or 0,
        "n_cycles": figures.pdsa_started,
        "signal_text": signal_text,
        "baseline_pct": _pct(baseline),
        "recent_pct": _pct(recent),
        "goal_pct": _pct(goal) or 0,
        "aim": aim_text,
    }


def _summary(run: StepRun) -> None:
    team = run.team
    assert team is not None
    figures = team_figures(run.session, team, run.row.local_day)
    people = team_people(run.session, team)
    if team.leader is not None:
        people.append(team.leader)
    for recipient in run.recipients(people):
        context = run.base_context(recipient)
        context.update(summary_context(run, figures, recipient.lang))
        run.send(
            recipient,
            run.row.kind,
            context,
            payload={"photo": {"kind": "chart", "team_id": team.id}},
        )


def _coach_digest(run: StepRun) -> None:
    coach = run.session.get(Person, run.row.coach_id) if run.row.coach_id else None
    if coach is None or coach not in run.cohort.coaches:
        run.outcome.note = "no longer a coach of this cohort"
        return
    enabled = enabled_channels(run.ctx)
    if coach.opted_out or address_for(coach, enabled=enabled) is None:
        run.outcome.note = "the coach has no chat address; the dashboard shows the same"
        return
    lang = language_of(coach.language)
    teams = (
        run.session.execute(
            select(Team)
            .where(Team.cohort_id == run.cohort.id, Team.state == TeamState.ENROLLED.value)
            .order_by(Team.name, Team.id)
        )
        .scalars()
        .all()
    )
    attention: list[dict[str, str]] = []
    for team in teams:
        figures = team_figures(run.session, team, run.row.local_day)
        reason_vars = {
            "waiting": figures.waiting_messages,
            "missed_days": figures.missed_days,
            "new_plans": figures.pdsa_to_review,
            "signal": bool(figures.signal),
        }
        if any(reason_vars.values()):
            attention.append(
                {"name": team.name, "reason": render("agenda_digest_reason", lang, **reason_vars)}
            )
    context = {
        "coach_name": coach.name,
        "cohort_name": run.cohort.name,
        "topic_title": run.curriculum.title.render(lang),
        "date_label": run.date_label(run.row.local_day, lang),
        "n_teams": len(teams),
        "teams_needing_attention": attention,
        "dashboard_link": run.ctx.settings.url(f"/cohorts/{run.cohort.id}"),
    }
    text = run.curriculum.render_message("coach_digest", lang, **context)
    target = address_for(coach, enabled=enabled)
    assert target is not None
    message = queue_message(
        run.session,
        channel=target[0],
        address=target[1],
        text=text,
        person=coach,
        priority=Priority.BULK,
        kind="coach_digest",
        dedupe_key=f"agenda:{run.row.id}:p{coach.id}:coach_digest",
    )
    if message is not None:
        run.outcome.queued += 1
        run.outcome.kinds.append("coach_digest")


def _story_digest(run: StepRun) -> None:
    from dash.actions.stories import queue_story_digest
    from dash.sharing import board_url

    week_start = date.fromisoformat(run.row.payload["week_start"])
    messages = queue_story_digest(
        run.session,
        run.cohort,
        week_start,
        board_link=lambda team_id: board_url(run.ctx.settings, run.ctx.secret, team_id),
    )
    if not messages:
        run.outcome.note = "no stories shared this week"
        return
    run.outcome.queued += len(messages)
    run.outcome.kinds.append("story_digest")


RENDERERS = {
    "session_reminder": _session_step,
    "session_followup": _session_step,
    "daily_prompt": _daily_prompt,
    "nudge": _nudge,
    "pdsa_followup": _pdsa_followup,
    "midpoint_summary": _summary,
    "final_summary": _summary,
    "coach_digest": _coach_digest,
    "story_digest": _story_digest,
}


def _step_run(
    session: Session, ctx: AppContext, row: AgendaItem, now: datetime, **preloaded: Any
) -> StepRun:
    """The StepRun of one due row, its cohort, team and curriculum looked up, so `run_step`
    and `run_batch` render a row from the same inputs (`preloaded`: run_batch's extras)."""
    cohort = session.get(Cohort, row.cohort_id)
    assert cohort is not None
    return StepRun(
        session=session,
        ctx=ctx,
        row=row,
        now=now,
        cohort=cohort,
        curriculum=load_curriculum(cohort.topic),
        team=session.get(Team, row.team_id) if row.team_id is not None else None,
        **preloaded,
    )


def run_step(session: Session, ctx: AppContext, row: AgendaItem, now: datetime) -> StepOutcome:
    """Render and queue one due row's messages in the caller's transaction (`run_batch` of one)."""
    return run_batch(session, ctx, [row], now)[row.id]


@dataclass
class _Preload:
    """What a batch reads once for all its rows (see `_batch_preload`)."""

    members: dict[int, set[int]]
    reporters: dict[int, list[Person]]
    values: set[tuple[int, int, date]]
    #: Every person loaded, held so the session's weak identity map keeps them.
    loaded: list[Person]

    def for_team(self, team_id: int | None) -> dict[str, Any]:
        """The StepRun fields of a row of `team_id`."""
        return {
            "members": self.members.get(team_id) if team_id is not None else None,
            "preloaded_reporters": (self.reporters.get(team_id) or None)
            if team_id is not None
            else None,
            "values": self.values,
        }


def _batch_preload(session: Session, rows: list[AgendaItem]) -> _Preload:
    """The memberships, data reporters and current values of `rows`' teams, one query each."""
    team_ids = {r.team_id for r in rows if r.team_id is not None}
    members, reporters, loaded = _batch_people(session, team_ids)
    days = {date.fromisoformat(r.payload["day"]) for r in rows if "day" in r.payload}
    values: set[tuple[int, int, date]] = set()
    if team_ids and days:
        values = {
            (team_id, measure_id, day)
            for team_id, measure_id, day in session.execute(
                select(MeasureValue.team_id, MeasureValue.measure_id, MeasureValue.day).where(
                    MeasureValue.team_id.in_(team_ids),
                    MeasureValue.day.in_(days),
                    MeasureValue.is_current.is_(True),
                )
            )
        }
    return _Preload(members, reporters, values, loaded)


def _batch_people(
    session: Session, team_ids: set[int]
) -> tuple[dict[int, set[int]], dict[int, list[Person]], list[Person]]:
    """Every membership of `team_ids` in one query: (member ids by team, data reporters who
    did not opt out by team, in id order, every person loaded so the caller can hold them)."""
    members: dict[int, set[int]] = {t: set() for t in team_ids}
    reporters: dict[int, list[Person]] = {t: [] for t in team_ids}
    loaded: list[Person] = []
    for team_id, role, person in session.execute(
        select(Membership.team_id, Membership.role, Person)
        .join(Person, Membership.person_id == Person.id)
        .where(Membership.team_id.in_(team_ids))
        .order_by(Person.id)
        .options(selectinload(Person.addresses))  # where each is reached, in one query
    ):
        loaded.append(person)
        members[team_id].add(person.id)
        chosen = reporters[team_id]
        if role == Role.DATA_REPORTER.value and not person.opted_out and person not in chosen:
            chosen.append(person)
    return members, reporters, loaded


def run_batch(
    session: Session, ctx: AppContext, rows: list[AgendaItem], now: datetime
) -> dict[int, StepOutcome]:
    """Render and queue due rows in the caller's transaction; each row's outcome by row id.

    Rows of BATCHED_KINDS are rendered together: their memberships, reporters and existing
    values are read in one query each and their messages queued by one `queue_many` (why:
    thousands of teams share a prompt time). Other rows queue each message as they render it,
    since their renderers branch on whether it went.
    """
    batched = [r for r in rows if r.kind in BATCHED_KINDS]
    preload = _batch_preload(session, batched) if batched else None
    runs: list[StepRun] = []
    memo: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        extras: dict[str, Any] = {}
        if preload is not None and row.kind in BATCHED_KINDS:
            extras = {**preload.for_team(row.team_id), "drafts": [], "memo": memo}
        run = _step_run(session, ctx, row, now, **extras)
        runs.append(run)
        renderer = RENDERERS.get(row.kind)
        if renderer is None:
            run.outcome.note = f"unknown step kind {row.kind!r}"
            continue
        renderer(run)
    drafts = [d for run in runs for d in run.drafts or []]
    queued = iter(queue_many(session, drafts))
    for run in runs:
        for draft in run.drafts or []:
            if next(queued):
                run.outcome.queued += 1
                run.outcome.kinds.append(draft.kind)
        if run.outcome.note is None and run.outcome.queued == 0:
            run.outcome.note = "nobody reachable to send to"
    return {run.row.id: run.outcome for run in runs}
