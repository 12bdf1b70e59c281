"""A coach or admin repairs an unfinished enrolment from the team page: resume it where it
stopped, start it over, or name the leader (the repair actions in dash.actions.enrolment)."""

from __future__ import annotations

from starlette.responses import Response

from dash.actions.enrolment import (
    restart_enrolment,
    resume_enrolment,
    set_leader_contact,
    signoff_url,
)
from dash.models import Team, TeamState
from dash.reach import enabled_channels, reply_windows
from dash.web.access import team_for
from dash.web.pages import Page, redirect

_BACK = "/teams/{}#enrolment"

#: What the coach is told after "resume", by the step the key contact or leader was asked.
_RESUMED = {
    "signoff": "The leader was sent the sign-off request again.",
    "signoff_unreached": (
        "The leader cannot be messaged yet: send them the sign-off link below yourself."
    ),
    "leader_name": "The key contact was asked again who the leader is.",
}


def _team(page: Page) -> Team:
    assert page.user is not None
    return team_for(page.db, page.user, page.int_param(page.request.path_params["team_id"]))


def resume(page: Page) -> Response:
    """Ask again what the enrolment waits for (the key contact's question or the sign-off)."""
    team = _team(page)
    with page.attempt() as errors:
        step = resume_enrolment(
            page.db,
            team,
            page.user,
            enabled=enabled_channels(page.ctx),
            windows=reply_windows(page.ctx),
        )
    if errors:
        page.flash("Not resumed: " + errors[0])
    else:
        page.flash(
            _RESUMED.get(step, "The key contact was asked the open question again.")
            + _link_if_unreached(page, team, step)
        )
    return redirect(_BACK.format(team.id))


def restart(page: Page) -> Response:
    """Start the matrix over; the leader named so far is forgotten."""
    team = _team(page)
    if page.field("confirm") != "yes":
        page.flash("Not restarted: tick the box to confirm the matrix starts over.")
        return redirect(_BACK.format(team.id))
    with page.attempt() as errors:
        restart_enrolment(page.db, team, page.user, enabled=enabled_channels(page.ctx))
    page.flash(
        "Not restarted: " + errors[0]
        if errors
        else "Enrolment restarted: the key contact was sent the first matrix question."
    )
    return redirect(_BACK.format(team.id))


def leader(page: Page) -> Response:
    """Name or correct the leader; they are asked to sign off when the matrix is done."""
    team = _team(page)
    name, contact = page.field("name"), page.field("contact")
    if not contact:
        page.flash("Not saved: give the leader's mobile number, @username, or ME.")
        return redirect(_BACK.format(team.id))
    with page.attempt() as errors:
        person, reached = set_leader_contact(
            page.db,
            team,
            page.user,
            name=name,
            contact=contact,
            role=page.field("role"),
            enabled=enabled_channels(page.ctx),
            windows=reply_windows(page.ctx),
        )
    if errors:
        page.flash("Leader not saved: " + errors[0])
    elif team.state != TeamState.AWAITING_SIGNOFF.value:
        page.flash(f"Leader saved: {person.name or contact}. They are asked once the matrix is done.")
    elif reached:
        page.flash(f"Leader saved: {person.name or contact} was sent the sign-off request.")
    else:
        page.flash(
            f"Leader saved, but {person.name or contact} cannot be messaged yet."
            + _link_if_unreached(page, team, "signoff_unreached")
        )
    return redirect(_BACK.format(team.id))


def _link_if_unreached(page: Page, team: Team, step: str) -> str:
    """The signed link to forward, when the leader cannot be messaged."""
    if step != "signoff_unreached":
        return ""
    return f" Sign-off link: {signoff_url(page.ctx, page.ctx.secret, team)}"
