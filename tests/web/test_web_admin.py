"""Admin pages: cohorts, coaches, enrolment, postponing sessions, retrying failed messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dash.actions.outbox import record_failure
from dash.actions.queueing import queue_message
from dash.models import Address, Cohort, OutboxItem, Person, Team
from dash.models.teams import TeamState
from dash.timeutil import utcnow
from tests.support import web as w
from tests.support.people import address_on


@pytest.fixture
def admin(ctx):
    with ctx.db.transaction() as s:
        cohort = w.cohort(s, name="Spring")
        w.coach(s, "admin@example.org", admin=True, name="Ada Admin")
        w.coach(s, "coach@example.org", name="Casey Coach")
        cohort_id = cohort.id
    client = w.client_for(ctx)
    w.login(client, "admin@example.org")
    return ctx, client, cohort_id


def test_admin_pages_are_not_there_for_coaches(admin):
    ctx, _, cohort_id = admin
    coach = w.client_for(ctx)
    w.login(coach, "coach@example.org")
    assert coach.get("/admin").status_code == 404
    assert coach.get(f"/admin/cohorts/{cohort_id}").status_code == 404
    assert w.post(coach, "/admin/cohorts", {"topic": "vte"}).status_code == 404
    assert 'href="/admin"' not in coach.get("/").text


def test_create_a_cohort(admin):
    ctx, client, _ = admin
    done = w.post(
        client,
        "/admin/cohorts",
        {
            "topic": "sepsis",
            "start": "2027-03-08",
            "timezone": "America/New_York",
            "name": "Sepsis March",
            "weekdays": "mon,wed,fri",
            "session_time": "13:00",
        },
        form_page="/admin",
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"]).text
    assert "Sepsis March" in page and "enrolment code is" in page
    assert "Mon 8 Mar at 13:00" in page  # session 1
    bad = w.post(
        client,
        "/admin/cohorts",
        {"topic": "sepsis", "start": "2027-03-08", "timezone": "EST"},
        form_page="/admin",
    )
    assert "unknown time zone" in client.get(bad.headers["location"]).text
    with ctx.db.transaction() as s:
        assert [
            c.name for c in s.execute(select(Cohort).where(Cohort.topic == "sepsis")).scalars()
        ] == ["Sepsis March"]


def test_assign_and_remove_a_coach(admin):
    ctx, client, cohort_id = admin
    with ctx.db.transaction() as s:
        casey = s.execute(select(Person).where(Person.email == "coach@example.org")).scalar_one().id
    page = f"/admin/cohorts/{cohort_id}"
    w.post(client, f"{page}/coaches", {"coach_id": str(casey)}, form_page=page)
    coach = w.client_for(ctx)
    w.login(coach, "coach@example.org")
    assert coach.get(f"/cohorts/{cohort_id}").status_code == 200
    w.post(client, f"{page}/coaches/{casey}/remove", {}, form_page=page)
    assert coach.get(f"/cohorts/{cohort_id}").status_code == 404


def test_a_new_coach_logs_in_with_the_one_time_link(admin):
    ctx, client, _ = admin
    w.post(
        client,
        "/admin/coaches",
        {"name": "Nia New", "email": "nia@example.org"},
        form_page="/admin",
    )
    page = client.get("/admin").text
    link = page.split("/login/link/")[1].split("<")[0]
    new = w.client_for(ctx)
    form = new.get(f"/login/link/{link}")
    assert new.post(f"/login/link/{link}", data={"csrf": w.csrf_of(form.text)}).status_code == 303
    assert "Log out Nia New" in new.get("/").text
    assert "/login/link/" not in client.get("/admin").text  # shown once


def test_enrol_a_unit_then_withdraw_it(admin):
    ctx, client, cohort_id = admin
    page = f"/admin/cohorts/{cohort_id}"
    w.post(
        client,
        f"{page}/teams",
        {
            "organisation": "St Elsewhere",
            "unit": "5 West",
            "name": "Kim",
            "phone": "(202) 555-0143",
        },
        form_page=page,
    )
    with ctx.db.transaction() as s:
        team = s.execute(select(Team)).scalar_one()
        assert team.state == TeamState.AWAITING_MATRIX.value
        assert address_on(team.key_contact, "sms") == "+12025550143"
        team_id = team.id
    shown = client.get(page).text
    assert "/matrix/" in shown
    bad = w.post(
        client,
        f"{page}/teams",
        {"organisation": "X", "unit": "Y", "name": "Z", "phone": "12"},
        form_page=page,
    )
    assert "not valid" in client.get(bad.headers["location"]).text
    w.post(client, f"/admin/teams/{team_id}/withdraw", {}, form_page=page)
    with ctx.db.transaction() as s:
        team = s.get(Team, team_id)
        assert team.state == TeamState.WITHDRAWN.value and team.ended_at is not None


def test_postpone_a_session(admin):
    ctx, client, cohort_id = admin
    with ctx.db.transaction() as s:
        cohort = s.get(Cohort, cohort_id)
        version = cohort.schedule_version
        last_session = cohort.start_date + timedelta(days=30)
    page = f"/admin/cohorts/{cohort_id}"
    w.post(
        client,
        f"{page}/postpone",
        {"number": "6", "day": last_session.isoformat(), "time": "15:00"},
        form_page=page,
    )
    shown = client.get(page).text
    assert "Session 6 moved to" in shown and "moved</strong>" in shown
    with ctx.db.transaction() as s:
        cohort = s.get(Cohort, cohort_id)
        assert cohort.schedule_version == version + 1
        assert cohort.session_overrides["6"] == {"day": last_session.isoformat(), "time": "15:00"}
    w.post(client, f"{page}/postpone", {"number": "2", "day": "not a date"}, form_page=page)
    assert "write a date as YYYY-MM-DD" in client.get(page).text


def test_failed_messages_show_their_error_and_can_be_retried(admin):
    ctx, client, _ = admin
    with ctx.db.transaction() as s:
        nurse = w.nurse(s, "Ana", "ana")
        nurse.addresses.append(Address(channel="sms", address="+15550100199", chat_id="+15550100199"))
        message = queue_message(
            s, channel="sms", address="+15550100199", text="Your daily count, please", person=nurse
        )
        s.flush()
        outbox = s.execute(
            select(OutboxItem).where(OutboxItem.message_id == message.id)
        ).scalar_one()
        record_failure(s, outbox.id, code="30003", detail="Unreachable destination handset")
        outbox_id = outbox.id
    page = client.get("/admin").text
    assert "30003" in page and "Unreachable destination handset" in page
    w.post(client, f"/admin/outbox/{outbox_id}/retry", {}, form_page="/admin")
    with ctx.db.transaction() as s:
        assert s.get(OutboxItem, outbox_id).state == "queued"
    after = client.get("/admin").text
    assert "queued again" in after and "Unreachable destination handset" not in after
    w.post(client, f"/admin/outbox/{outbox_id}/retry", {}, form_page="/admin")
    assert "only failed ones can be retried" in client.get("/admin").text


def test_locked_accounts_show_on_the_admin_page(admin):
    ctx, client, _ = admin
    with ctx.db.transaction() as s:
        s.execute(
            select(Person).where(Person.email == "coach@example.org")
        ).scalar_one().locked_until = utcnow() + timedelta(minutes=5)
    assert "locked until" in client.get("/admin").text


def test_a_locked_out_coach_gets_back_in_with_a_link_from_an_admin(admin):
    ctx, client, _ = admin
    guesser = w.client_for(ctx, "192.0.2.99")
    for n in range(ctx.settings.login_max_failures):
        page = guesser.get("/login")
        guesser.post(
            "/login",
            data={"email": "coach@example.org", "password": f"guess {n}", "csrf": w.csrf_of(page.text)},
        )
    assert "locked until" in client.get("/admin").text
    w.post(
        client,
        "/admin/coaches",
        {"name": "Casey Coach", "email": "coach@example.org"},
        form_page="/admin",
    )
    link = client.get("/admin").text.split("/login/link/")[1].split("<")[0]
    coach = w.client_for(ctx)
    form = coach.get(f"/login/link/{link}")
    assert coach.post(f"/login/link/{link}", data={"csrf": w.csrf_of(form.text)}).status_code == 303
    assert "Log out Casey Coach" in coach.get("/").text
    assert "locked until" not in client.get("/admin").text


def test_an_admin_removes_a_coach_and_their_open_sessions_end(admin):
    ctx, client, cohort_id = admin
    with ctx.db.transaction() as s:
        casey = s.execute(select(Person).where(Person.email == "coach@example.org")).scalar_one()
        cohort = s.get(Cohort, cohort_id)
        cohort.coaches.append(casey)
        casey_id = casey.id
    coach = w.client_for(ctx)
    w.login(coach, "coach@example.org")
    assert coach.get(f"/cohorts/{cohort_id}").status_code == 200
    assert 'action="/admin/coaches/1/remove"' not in client.get("/admin").text  # not oneself
    w.post(client, f"/admin/coaches/{casey_id}/remove", {}, form_page="/admin")
    assert "can no longer log in" in client.get("/admin").text
    assert coach.get(f"/cohorts/{cohort_id}").headers["location"].startswith("/login")
    page = coach.get("/login")
    again = coach.post(
        "/login",
        data={"email": "coach@example.org", "password": w.PASSWORD, "csrf": w.csrf_of(page.text)},
    )
    assert again.status_code == 400
    assert "coach@example.org" not in client.get("/admin").text
