"""Deciding what an inbound message is and who handles it.

Order matters and is the product's promise: channel events first; then messages that cannot
be read (empty, too long, media only); STOP (never data) and START; then the keywords any
sender may use (LANG, JOIN, HELP); then the answer to the question the bot is waiting for; a
daily count; the other keywords; and finally free text, which goes to the team's coach.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from dash.actions import optout, people
from dash.actions.consent import set_consent
from dash.actions.enrolment import reopen_matrix
from dash.actions.queueing import queue_message
from dash.actions.threads import file_failed, flag_for_coach
from dash.context import AppContext
from dash.engine import data as data_flow
from dash.engine import enrol, pdsa
from dash.engine.identity import choose_team, identify, new_person, recognise
from dash.engine.standing import explain_waiting
from dash.engine.turn import Turn
from dash.inbound import InboundMessage
from dash.models import Message, PendingQuestion, Person, Role, Team, TeamState
from dash.parsing import (
    BadFraction,
    Command,
    Fraction,
    parse_choice,
    parse_command,
    parse_counts,
    parse_fraction,
)
from dash.privacy import looks_identifying
from dash.queries import people as people_queries
from dash.queries.enrolment import latest_matrix
from dash.reach import enabled_channels
from dash.texts import render
from dash.timeutil import utcnow


def process(ctx: AppContext, session: Session, inbound: InboundMessage, message: Message) -> None:
    """Act on one stored inbound message (in the caller's transaction)."""
    row = identify(session, inbound)
    person = row.person if row is not None else None
    group_team = (
        people_queries.team_for_group(session, inbound.channel, inbound.address)
        if inbound.is_group
        else None
    )
    turn = Turn(ctx, session, inbound, message, person, group_team=group_team)
    if row is not None:
        recognise(session, inbound, message, row)
    if group_team is not None:
        turn.use_team(group_team)
    if inbound.event != "message":
        _event(turn)
        return
    route(turn)


# ---------------------------------------------------------------------------------------------


def route(turn: Turn, *, forced_team: Team | None = None) -> None:
    inbound, person = turn.inbound, turn.person
    if forced_team is not None:
        turn.use_team(forced_team)
    text = turn.text
    if not text and not inbound.callback_data:
        turn.reply("unsupported_media" if inbound.media else "empty_message")
        return
    if len(text) > turn.ctx.settings.max_message_chars:
        turn.reply("too_long", limit=turn.ctx.settings.max_message_chars)
        return
    command = parse_command(text) if not inbound.callback_data else None
    keyword = command.name if command is not None else ""

    if command is not None and keyword == "stop":
        _stop(turn)
        return
    if person is not None and person.opted_out:
        _while_stopped(turn, person, keyword)
        return
    if command is not None and keyword in ANY_SENDER:
        ANY_SENDER[keyword](turn, command)
        return
    if inbound.is_group and turn.group_team is None:
        return  # an unlinked group: only JOIN <team code> means anything there
    if person is None:
        if turn.group_team is not None:
            person = new_person(turn)
            people.join_team(turn.session, turn.group_team, person)
        else:
            from dash.engine.identity import remember_stranger

            remember_stranger(turn)
            turn.reply("unknown_sender", address_kind=inbound.address_kind)
            return
    if command is not None and keyword in KNOWN_SENDER:
        KNOWN_SENDER[keyword](turn, command)
        return

    today = turn.today()  # the count handlers read day words again in the unit's time zone
    fraction = parse_fraction(text, today) if not inbound.callback_data else None
    pending = turn.pending()
    if isinstance(fraction, Fraction) and not _expects_text(turn, pending):
        data_flow.count(turn, fraction)
        return
    several = parse_counts(text, today) if fraction is None and not inbound.callback_data else None
    if several and not _expects_text(turn, pending):
        data_flow.several(turn, several)
        return
    interrupts = keyword in INTERRUPTING
    if pending is not None and not interrupts and _answer_pending(turn, pending, fraction):
        return
    if command is not None and keyword in KEYWORDS and KEYWORDS[keyword](turn, command):
        return
    if isinstance(fraction, BadFraction):
        team = choose_team(turn)
        if team is not None:
            data_flow.bad(turn, fraction)
        return
    if inbound.callback_data:
        turn.reply("button_expired")
        return
    free_text(turn)


def _while_stopped(turn: Turn, person: Person, keyword: str) -> None:
    """Only START means anything from someone who opted out."""
    if keyword == "start":
        optout.opt_in(turn.session, person)
        if not turn.inbound.provider_confirms_start:
            turn.reply("started")
    elif not turn.inbound.provider_confirms_stop:
        turn.reply("still_stopped", even_if_opted_out=True)


def _plan(turn: Turn, command: Command) -> bool:
    team = choose_team(turn)
    if team is not None:
        pdsa.begin(turn, team)
    return True


def _chart(turn: Turn, command: Command) -> bool:
    team = choose_team(turn)
    if team is not None:
        chart(turn, team)
    return True


def _revise_keyword(turn: Turn, command: Command) -> bool:
    _revise(turn)
    return True


def _share_keyword(turn: Turn, command: Command) -> bool:
    _share(turn, command.arg == "on")
    return True


#: Keywords any sender may use, known or not, in a linked group or not.
ANY_SENDER: dict[str, Callable[[Turn, Command], None]] = {
    "lang": lambda turn, command: _lang(turn, command),
    "join": lambda turn, command: enrol.join(turn, command.arg),
}
#: Keywords of a known sender that come before the question the bot is waiting for.
KNOWN_SENDER: dict[str, Callable[[Turn, Command], None]] = {
    "help": lambda turn, command: help_for(turn),
    "start": lambda turn, command: help_for(turn, greeting=True),
}
#: Keywords that come after the answer to that question; a handler returning False lets the
#: message go on (YES/NO mean something only to a leader asked to sign off).
KEYWORDS: dict[str, Callable[[Turn, Command], bool]] = {
    "yes": enrol.signoff_without_question,
    "no": enrol.signoff_without_question,
    "revise": _revise_keyword,
    "share": _share_keyword,
    "plan": _plan,
    "chart": _chart,
}
#: Keywords that set aside the question the bot is waiting for.
INTERRUPTING = frozenset({"plan", "chart"})


#: Open questions whose answer may look like a count ("8 of 10" as a prediction).
TEXT_STEPS = {
    ("pdsa", "prediction"),
    ("pdsa", "who"),
    ("pdsa", "measure"),
    ("pdsa", "change"),
    ("pdsa_follow", "do"),
    ("pdsa_follow", "study"),
    ("story", "story"),
}
#: How long such a question takes precedence over a daily count that looks like its answer.
FRESH_QUESTION = timedelta(hours=2)


def _expects_text(turn: Turn, pending: PendingQuestion | None) -> bool:
    """Whether a count-like message answers the open question rather than a daily prompt."""
    if pending is None or (pending.flow, pending.step) not in TEXT_STEPS:
        return False
    return turn.now - pending.asked_at <= FRESH_QUESTION


def _answer_pending(
    turn: Turn, pending: PendingQuestion, fraction: Fraction | BadFraction | None
) -> bool:
    """Hand the message to the flow waiting for it; False when the flow lets it pass on."""
    if pending.team_id is not None and turn.team is None:
        team = turn.session.get(Team, pending.team_id)
        if team is not None:
            turn.use_team(team)
    answer = FLOWS.get(pending.flow)
    return answer(turn, pending, fraction) if answer is not None else False


def _text_answer(
    handler: Callable[[Turn, PendingQuestion], bool],
) -> Callable[[Turn, PendingQuestion, Fraction | BadFraction | None], bool]:
    """A flow's answer handler that reads the message's text, not a parsed count."""
    return lambda turn, pending, _fraction: handler(turn, pending)


#: Each pending question's flow and the handler of its answer; True when it was answered.
FLOWS: dict[str, Callable[[Turn, PendingQuestion, Fraction | BadFraction | None], bool]] = {
    "enrol": _text_answer(enrol.answer),
    "signoff": _text_answer(enrol.answer_signoff),
    "join": _text_answer(enrol.answer_join_name),
    "pdsa": _text_answer(pdsa.answer_plan),
    "pdsa_follow": _text_answer(pdsa.answer_followup),
    "story": _text_answer(pdsa.answer_story),
    "choose_team": _text_answer(lambda turn, pending: _answer_team_choice(turn, pending)),
    "data": data_flow.answer,
}


# -- teams ------------------------------------------------------------------------------------


def _answer_team_choice(turn: Turn, pending: PendingQuestion) -> bool:
    ids = list(pending.data.get("team_ids") or [])
    choice = parse_choice(turn.text, turn.callback, len(ids))
    if choice is None:
        teams = [turn.session.get(Team, i) for i in ids]
        turn.fail("choose_team_again", teams=[t.name for t in teams if t is not None])
        return True
    team = turn.session.get(Team, ids[choice - 1])
    if team is None:
        turn.done()
        turn.reply("no_team")
        return True
    person = turn.person
    assert person is not None
    original, original_callback = pending.data.get("text") or "", pending.data.get("callback")
    turn.done()
    people.remember_team(turn.session, person, team)
    # Answer what they first sent, now that the team is known.
    replay = InboundMessage(
        channel=turn.inbound.channel,
        provider_id=turn.inbound.provider_id,
        address=turn.inbound.address,
        sender=turn.inbound.sender,
        text=original,
        received_at=turn.inbound.received_at,
        raw=turn.inbound.raw,
        sender_name=turn.inbound.sender_name,
        language=turn.inbound.language,
        is_group=turn.inbound.is_group,
        callback_data=original_callback,
        provider_confirms_stop=turn.inbound.provider_confirms_stop,
        provider_confirms_start=turn.inbound.provider_confirms_start,
    )
    turn.inbound = replay
    route(turn, forced_team=team)
    return True


# -- keywords ---------------------------------------------------------------------------------


def _stop(turn: Turn) -> None:
    person = turn.person
    if person is None:
        if turn.inbound.is_group:
            return
        person = new_person(turn)  # remember the choice, so nothing is ever sent to them
    optout.mark_opted_out(turn.session, person, reason=f"STOP via {turn.channel}")
    if not turn.inbound.provider_confirms_stop and not turn.inbound.is_group:
        turn.reply("stopped", even_if_opted_out=True)


def _lang(turn: Turn, command: Command) -> None:
    from dash.parsing import parse_language

    language = parse_language(command.arg)
    if language is None:
        turn.reply("lang_unknown")
        return
    if turn.person is None and not turn.inbound.is_group:
        new_person(turn)  # remember the choice: "LANG es" then "JOIN <code>" goes on in Spanish
    if turn.person is not None:
        people.set_language(turn.session, turn.person, language)
        turn.reply("lang_set")
    else:
        turn.say(render("lang_set", language))


def help_for(turn: Turn, *, greeting: bool = False) -> None:
    """A short usage text for where the sender is."""
    person = turn.person
    assert person is not None
    pending = turn.pending()
    if pending is not None and pending.flow == "signoff":
        team = turn.session.get(Team, pending.team_id) if pending.team_id else None
        if team is not None and team.state == TeamState.AWAITING_SIGNOFF.value:
            from dash.actions.enrolment import request_signoff

            request_signoff(turn.session, team, enabled=enabled_channels(turn.ctx))
            return
    where = "member"
    waiting: list[Team] = []
    if pending is not None:
        where = {"enrol": "enrol", "pdsa": "pdsa", "pdsa_follow": "pdsa", "story": "pdsa"}.get(
            pending.flow, "question"
        )
        if (pending.flow, pending.step) in (("data", "next"), ("data", "fix")):
            where = "member"  # "Next, please" is no question HELP must insist on
    elif not people_queries.teams_of(turn.session, person):
        waiting = people_queries.teams_of(turn.session, person, active_only=False)
        where = "waiting" if waiting else "none"
    if where == "waiting":
        # The true state of their enrolment and the one thing to send next, not a guess.
        if greeting:
            turn.reply("help", where="greeting", greeting=True, person_name=person.name)
        explain_waiting(turn, waiting[-1])
        return
    turn.reply(
        "help",
        where=where,
        greeting=greeting,
        person_name=person.name,
        **data_flow.help_context(turn),
    )
    if pending is not None and pending.flow == "enrol":
        enrol.reask(turn, pending)


def _revise(turn: Turn) -> None:
    person = turn.person
    assert person is not None
    declined = [
        t
        for t in people_queries.teams_of(turn.session, person, active_only=False)
        if t.state == TeamState.DECLINED.value and t.key_contact_id == person.id
    ]
    if not declined:
        turn.reply("nothing_to_revise")
        return
    team = declined[-1]
    turn.use_team(team)
    reopen_matrix(turn.session, team)
    matrix = latest_matrix(turn.session, team)
    enrol.ask_score(turn, team, 0, revision=(matrix.revision + 1) if matrix else 1)


def _share(turn: Turn, shared: bool) -> None:
    team = choose_team(turn)
    if team is None:
        return
    person = turn.person
    assert person is not None
    if not {Role.KEY_CONTACT.value, Role.LEADER.value} & people_queries.roles_in(
        turn.session, person, team
    ):
        turn.reply("share_not_allowed")
        return
    set_consent(turn.session, team=team, shared=shared, by=person, via=turn.channel)
    turn.reply("share_set", shared=shared, team_name=team.name)


def chart(turn: Turn, team: Team) -> None:
    """The team's run chart as an image (the channel adapter draws and sends it)."""
    caption = render("chart_caption", turn.lang, team_name=team.name)
    turn.say(caption, payload={"photo": {"kind": "chart", "team_id": team.id}}, kind="chart")


def free_text(turn: Turn) -> None:
    """Stored in the team's thread, acknowledged, shown to the coach."""
    team = choose_team(turn)
    if team is None:
        return  # told they have no team yet, or asked which one (the answer replays this)
    flag_for_coach(turn.session, team, turn.message)
    person = turn.person
    turn.reply("free_text_ack")
    if person is not None and person.privacy_reminded_at is None and looks_identifying(turn.text):
        people.mark_privacy_reminded(person, utcnow())
        turn.reply("privacy_reminder")


# -- channel events ---------------------------------------------------------------------------


def _event(turn: Turn) -> None:
    inbound, session = turn.inbound, turn.session
    if inbound.event == "blocked":
        if turn.person is not None:
            optout.mark_opted_out(session, turn.person, reason="telegram: bot blocked")
    elif inbound.event == "bot_removed":
        if turn.group_team is not None:
            people.unlink_group(turn.group_team)
    elif inbound.event == "bot_added":
        person = turn.person
        candidates = (
            [
                t
                for t in people_queries.teams_of(session, person)
                if t.key_contact_id == person.id or t.leader_id == person.id
            ]
            if person is not None
            else []
        )
        if len(candidates) == 1 and turn.group_team is None:
            people.link_group(session, candidates[0], inbound.channel, inbound.address)
            turn.use_team(candidates[0])
            turn.group_team = candidates[0]
            turn.reply("group_linked", team_name=candidates[0].name)
        elif turn.group_team is None:
            turn.reply("group_how_to_link")


def apologise(ctx: AppContext, session: Session, inbound: InboundMessage, message: Message) -> None:
    """After a failure: the message is kept and a coach will see it; tell the sender."""
    person = session.get(Person, message.person_id) if message.person_id else None
    if person is None:
        person = people_queries.person_for(session, inbound.channel, inbound.sender)
    team_id = message.team_id
    if team_id is None and person is not None:
        teams = people_queries.teams_of(session, person)
        team_id = teams[0].id if len(teams) == 1 else None
    file_failed(session, message, session.get(Team, team_id) if team_id is not None else None)
    lang = person.language if person is not None else (inbound.language or "en")
    queue_message(
        session,
        channel=inbound.channel,
        address=inbound.address,
        text=render("processing_failed", lang),
        person=None if inbound.is_group else person,
        team=team_id,
    )


__all__ = ["apologise", "choose_team", "process", "route"]
