"""Admin pages: cohorts, coaches, sessions, enrolments and the outbox's failed messages."""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dash.actions.assignments import assign_coach, unassign_coach
from dash.actions.coaches import add_coach, remove_coach, send_login_link
from dash.actions.cohorts import create_cohort
from dash.actions.withdrawal import withdraw_team
from dash.curriculum import CurriculumNotFound, list_topics, load_curriculum
from dash.links import link_url
from dash.models import (
    Channel,
    Cohort,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxState,
    Person,
    Team,
)
from dash.phones import BadPhoneNumber, to_e164
from dash.privacy import mask_identifiers
from dash.reach import enabled_channels
from dash.schedule import SessionSlot, session_slots
from dash.web.pages import Page, redirect

FAILED_LIMIT = 200


def failed_outbox(db: Session) -> list[OutboxItem]:
    """Messages a person should look at: failed, held, or reported undelivered by the provider."""
    return list(
        db.execute(
            select(OutboxItem)
            .join(Message, Message.id == OutboxItem.message_id)
            .where(
                or_(
                    OutboxItem.state.in_([OutboxState.FAILED.value, OutboxState.HELD.value]),
                    Message.status.in_(
                        [MessageStatus.FAILED.value, MessageStatus.UNDELIVERED.value]
                    ),
                )
            )
            .order_by(OutboxItem.created_at.desc(), OutboxItem.id.desc())
            .limit(FAILED_LIMIT)
        ).scalars()
    )


def coaches(db: Session) -> list[Person]:
    return list(
        db.execute(
            select(Person)
            .where(or_(Person.is_coach.is_(True), Person.is_admin.is_(True)))
            .order_by(Person.name, Person.id)
        ).scalars()
    )


def admin_page(page: Page) -> Response:
    cohorts = list(
        page.db.execute(
            select(Cohort).order_by(Cohort.start_date.desc(), Cohort.id.desc())
        ).scalars()
    )
    return page.render(
        "admin.html",
        cohorts=cohorts,
        coaches=coaches(page.db),
        topics=list_topics(),
        failed=failed_outbox(page.db),
        mask=mask_identifiers,
        values={},
        login_link=page.request.session.pop("login_link", None),
    )


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{what}: write a date as YYYY-MM-DD") from exc


def _time(text: str, what: str) -> time | None:
    if not text:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{what}: write a time as HH:MM") from exc


def cohort_create(page: Page) -> Response:
    try:
        start = _date(page.field("start"), "Start date")
        at = _time(page.field("session_time"), "Session time") or time(12, 30)
    except ValueError as exc:
        page.flash(str(exc))
        return redirect("/admin#new-cohort")
    with page.attempt() as errors:
        cohort = create_cohort(
            page.db,
            topic=page.field("topic"),
            start=start,
            timezone=page.field("timezone"),
            name=page.field("name") or None,
            weekdays=page.field("weekdays") or "mon,wed,fri",
            session_time=at,
            join_link=page.field("join_link") or None,
        )
    if errors:
        page.flash("Cohort not created: " + errors[0])
        return redirect("/admin#new-cohort")
    page.flash(f"Cohort created. Its enrolment code is {cohort.enrolment_code}.")
    return redirect(f"/admin/cohorts/{cohort.id}")


def coach_create(page: Page) -> Response:
    """A new coach gets a one-time log-in link (shown once to the admin to pass on)."""
    with page.attempt() as errors:
        person = add_coach(page.db, email=page.field("email"), name=page.field("name"))
    if errors:
        page.flash("Coach not added: " + errors[0])
        return redirect("/admin#coaches")
    link = link_url(page.ctx.settings.public_url, page.ctx.secret, "login", person.id)
    page.request.session["login_link"] = link
    sent_by = send_login_link(
        page.db,
        person,
        link,
        hours=page.ctx.settings.link_ttl_hours,
        enabled=enabled_channels(page.ctx),
    )
    also = f" It was also sent to them by {sent_by}." if sent_by else ""
    page.flash(
        f"{person.name or person.email} can now log in with the link below (it works once)."
        + also
    )
    return redirect("/admin#coaches")


def coach_remove(page: Page) -> Response:
    """Take a coach's access away; every session they have open ends at once."""
    person = page.db.get(Person, page.int_param(page.request.path_params["person_id"]))
    if person is None or not person.email:
        raise HTTPException(404)
    if page.user is not None and person.id == page.user.id:
        page.flash("You cannot remove your own access; another admin can.")
        return redirect("/admin#coaches")
    with page.attempt() as errors:
        remove_coach(page.db, email=person.email)
    who = person.name or person.email
    page.flash(errors[0] if errors else f"{who} can no longer log in; their sessions have ended.")
    return redirect("/admin#coaches")


def _cohort(page: Page) -> Cohort:
    cohort = page.db.get(Cohort, page.int_param(page.request.path_params["cohort_id"]))
    if cohort is None:
        raise HTTPException(404)
    return cohort


def session_dates(cohort: Cohort) -> list[SessionSlot]:
    """The six sessions as the scheduler plans them (postponements included)."""
    try:
        return session_slots(cohort, load_curriculum(cohort.topic))
    except CurriculumNotFound:
        return []


def admin_cohort(page: Page) -> Response:
    cohort = _cohort(page)
    teams = list(
        page.db.execute(
            select(Team).where(Team.cohort_id == cohort.id).order_by(Team.name)
        ).scalars()
    )
    return page.render(
        "admin_cohort.html",
        cohort=cohort,
        teams=teams,
        coaches=coaches(page.db),
        sessions=session_dates(cohort),
        matrix_link=page.request.session.pop("matrix_link", None),
    )


def cohort_assign(page: Page) -> Response:
    cohort = _cohort(page)
    coach = page.db.get(Person, page.int_param(page.field("coach_id")))
    if coach is None:
        raise HTTPException(404)
    with page.attempt() as errors:
        assign_coach(page.db, cohort=cohort, coach=coach)
    page.flash(errors[0] if errors else f"{coach.name or coach.email} now coaches {cohort.name}.")
    return redirect(f"/admin/cohorts/{cohort.id}#coaches")


def cohort_unassign(page: Page) -> Response:
    cohort = _cohort(page)
    coach = page.db.get(Person, page.int_param(page.request.path_params["person_id"]))
    if coach is None:
        raise HTTPException(404)
    unassign_coach(page.db, cohort=cohort, coach=coach)
    page.flash(f"{coach.name or coach.email} no longer coaches {cohort.name}.")
    return redirect(f"/admin/cohorts/{cohort.id}#coaches")


def cohort_postpone(page: Page) -> Response:
    """Move one session; the scheduler rewrites the unsent reminders and follow-ups."""
    from dash.actions.cohorts import postpone_session

    cohort = _cohort(page)
    try:
        number = int(page.field("number")) if page.field("number").isdigit() else 0
        new_day = _date(page.field("day"), "New day")
        new_time = _time(page.field("time"), "New time")
    except ValueError as exc:
        page.flash(f"Not postponed: {exc}")
        return redirect(f"/admin/cohorts/{cohort.id}#sessions")
    with page.attempt() as errors:
        postpone_session(page.db, cohort=cohort, number=number, new_day=new_day, new_time=new_time)
    page.flash(
        f"Not postponed: {errors[0]}"
        if errors
        else f"Session {number} moved to {new_day:%a} {new_day.day} {new_day:%b}"
        + (f" at {new_time:%H:%M}" if new_time else "")
        + "; reminders follow on the next scheduler tick."
    )
    return redirect(f"/admin/cohorts/{cohort.id}#sessions")


def outbox_retry(page: Page) -> Response:
    from dash.actions.outbox import retry_outbox

    outbox_id = page.int_param(page.request.path_params["outbox_id"])
    with page.attempt() as errors:
        retry_outbox(page.db, outbox_id)
    page.flash(errors[0] if errors else f"Message {outbox_id} queued again.")
    return redirect("/admin#failed")


def cohort_enrol(page: Page) -> Response:
    """An admin starts a unit's enrolment for its key contact; the matrix link comes next."""
    from dash.actions.enrolment import start_team
    from dash.actions.people import create_person
    from dash.queries.people import person_for

    cohort = _cohort(page)
    back = f"/admin/cohorts/{cohort.id}#teams"
    try:
        phone = to_e164(page.field("phone"), page.ctx.settings.default_region)
    except BadPhoneNumber:
        page.flash(
            "Not enrolled: the key contact's mobile number is not valid (e.g. +15551234567)."
        )
        return redirect(back)
    with page.attempt() as errors:
        contact = person_for(page.db, Channel.SMS.value, phone) or create_person(
            page.db, channel=Channel.SMS.value, sender=phone, address=phone, name=page.field("name")
        )
        team = start_team(
            page.db,
            cohort=cohort,
            key_contact=contact,
            organisation=page.field("organisation"),
            unit=page.field("unit"),
        )
    if errors:
        page.flash("Not enrolled: " + errors[0])
        return redirect(back)
    page.request.session["matrix_link"] = link_url(
        page.ctx.settings.public_url, page.ctx.secret, "matrix", team.id
    )
    page.flash(f"{team.name} started. Send the key contact the priority-matrix link below.")
    return redirect(back)


def team_withdraw(page: Page) -> Response:
    team = page.db.get(Team, page.int_param(page.request.path_params["team_id"]))
    if team is None:
        raise HTTPException(404)
    with page.attempt() as errors:
        cancelled = withdraw_team(page.db, team=team)
    page.flash(
        f"Not withdrawn: {errors[0]}"
        if errors
        else f"{team.name} withdrawn; {cancelled} scheduled message(s) will not be sent."
    )
    return redirect(f"/admin/cohorts/{team.cohort_id}#teams")
