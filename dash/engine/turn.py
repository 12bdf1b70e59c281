"""One turn of conversation: the inbound message, who sent it, and how to answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from dash.actions.people import ask, clear_pending
from dash.actions.queueing import queue_message
from dash.actions.threads import flag_for_coach
from dash.context import AppContext
from dash.inbound import InboundMessage
from dash.models import Message, PendingQuestion, Person, Team
from dash.queries.people import pending_of
from dash.texts import render
from dash.timeutil import local_date, utcnow

#: Bad answers to the same question before the thread goes to a coach.
MAX_FAILURES = 2


def day_label(day: date, lang: str) -> str:
    """'Tue 3 Dec' / 'mar 3 dic': the words live in the date_label template."""
    return render("date_label", lang, weekday=day.weekday(), day=day.day, month=day.month)


@dataclass
class Turn:
    ctx: AppContext
    session: Session
    inbound: InboundMessage
    message: Message
    person: Person | None
    group_team: Team | None = None
    team: Team | None = None
    now: datetime = field(default_factory=utcnow)

    @property
    def lang(self) -> str:
        if self.person is not None:
            return self.person.language
        return self.inbound.language or "en"

    @property
    def channel(self) -> str:
        return self.inbound.channel

    @property
    def text(self) -> str:
        return (self.inbound.text or "").strip()

    @property
    def callback(self) -> str | None:
        return self.inbound.callback_data

    def today(self, team: Team | None = None) -> date:
        target = team or self.team
        if target is None:
            return self.now.date()
        return local_date(self.now, target.cohort.timezone)

    def use_team(self, team: Team) -> None:
        """This turn is about `team`: the message joins its thread."""
        self.team = team
        self.message.team_id = team.id

    def label(self, day: date) -> str:
        return day_label(day, self.lang)

    # -- answering ------------------------------------------------------------------------

    def say(
        self,
        text: str,
        *,
        payload: dict[str, Any] | None = None,
        even_if_opted_out: bool = False,
        kind: str = "reply",
    ) -> Message | None:
        """Queue `text` back to where the message came from (the group, for a group)."""
        return queue_message(
            self.session,
            channel=self.inbound.channel,
            address=self.inbound.address,
            text=text,
            person=None if self.inbound.is_group else self.person,
            team=self.team or self.group_team,
            kind=kind,
            payload=payload,
            even_if_opted_out=even_if_opted_out,
        )

    def reply(
        self,
        template: str,
        /,
        *,
        payload: dict[str, Any] | None = None,
        even_if_opted_out: bool = False,
        **context: Any,
    ) -> Message | None:
        """Render message template `template` in the sender's language and queue it back."""
        return self.say(
            render(template, self.lang, **context),
            payload=payload,
            even_if_opted_out=even_if_opted_out,
        )

    # -- questions ------------------------------------------------------------------------

    def pending(self) -> PendingQuestion | None:
        return pending_of(self.session, self.person) if self.person is not None else None

    def ask(
        self, flow: str, step: str, *, data: dict[str, Any] | None = None, team: Team | None = None
    ) -> PendingQuestion | None:
        if self.person is None:
            return None
        return ask(self.session, self.person, flow, step, team=team or self.team, data=data)

    def done(self) -> None:
        if self.person is not None:
            clear_pending(self.session, self.person)

    def fail(
        self,
        template: str,
        /,
        *,
        flow: str = "",
        step: str = "",
        keep_open: bool = False,
        **context: Any,
    ) -> None:
        """A bad answer: say what was expected; the second one in a row goes to a coach.

        The current pending question counts the failure; with none (a bad daily count),
        one is opened under `flow`/`step` so the next bad answer counts too. With
        `keep_open` (a flow that cannot go on without the answer, like enrolment) the
        question stays open past the second miss: the coach is flagged and the sender is
        asked again, so a valid answer later carries on where they stopped.
        """
        pending = self.pending()
        if pending is None and self.person is not None and flow:
            pending = self.ask(flow, step, data={})
        if pending is not None:
            pending.failures += 1
            if pending.failures >= MAX_FAILURES and keep_open:
                flag_for_coach(self.session, self.team or self.group_team, self.message)
                self.reply("question_still_open", question=render(template, self.lang, **context))
                return
            if pending.failures >= MAX_FAILURES:
                self.hand_to_coach()
                return
        self.reply(template, **context)

    def hand_to_coach(self) -> None:
        """Stop asking: the thread is flagged and the sender told a coach will help."""
        flag_for_coach(self.session, self.team or self.group_team, self.message)
        self.done()
        self.reply("handed_to_coach")
