"""The coach's pages end to end: Today, the cohort board, the team page and its forms."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from dash.dbplans import StatementCounter
from dash.engine import handle_inbound
from dash.exports import COLUMNS
from dash.inbound import InboundMessage
from dash.links import make_token
from dash.models import (
    AssessmentRating,
    FeedbackSnippet,
    Measure,
    MeasureValue,
    Membership,
    Message,
    OutboxItem,
    PdsaCycle,
    Team,
)
from dash.models.teams import Role, TeamState
from dash.timeutil import local_date, utcnow
from tests.support import web as w
from tests.support.people import person_at

SCRIPT = "<script>alert('x')</script> help with MRN 1234567"


def say(ctx, address: str, text: str, n: int) -> None:
    """A nurse writes on the console channel, through the real engine."""
    handle_inbound(
        ctx,
        InboundMessage(
            channel="console",
            provider_id=f"web-test-{address}-{n}",
            address=address,
            sender=address,
            text=text,
            received_at=utcnow(),
            raw={"text": text},
        ),
    )


@pytest.fixture
def world(ctx):
    """Two cohorts, each with a coach; team 5 West (two nurses) in the first."""
    with ctx.db.transaction() as s:
        mine = w.cohort(s, name="Mine")
        theirs = w.cohort(s, name="Theirs")
        w.coach(s, "coach@example.org", cohorts=[mine], name="Casey Coach")
        w.coach(s, "other@example.org", cohorts=[theirs], name="Olu Other")
        ana = w.nurse(s, "Ana", "ana")
        ben = w.nurse(s, "Ben", "ben")
        west = w.team(s, mine, "5 West", members=[ana, ben])
        east = w.team(s, theirs, "6 East", members=[w.nurse(s, "Eve", "eve")])
        ids = {"mine": mine.id, "theirs": theirs.id, "west": west.id, "east": east.id}
    return ctx, ids


def coach_client(ctx, email="coach@example.org"):
    client = w.client_for(ctx)
    w.login(client, email)
    return client


def test_a_coach_sees_only_their_cohorts_and_teams(world):
    ctx, ids = world
    client = coach_client(ctx)
    assert client.get(f"/cohorts/{ids['mine']}").status_code == 200
    assert client.get(f"/teams/{ids['west']}").status_code == 200
    for path in (
        f"/cohorts/{ids['theirs']}",
        f"/teams/{ids['east']}",
        f"/cohorts/{ids['theirs']}/export/messages.csv",
        "/cohorts/999",
        "/teams/abc",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "6 East" not in response.text and "Theirs" not in response.text
    today = client.get("/").text
    assert "Mine" in today and "Theirs" not in today


def test_another_coachs_team_refuses_replies_and_ratings(world):
    ctx, ids = world
    client = coach_client(ctx)
    token = w.csrf_of(client.get("/").text)
    for path, data in (
        (f"/teams/{ids['east']}/reply", {"text": "hi"}),
        (f"/teams/{ids['east']}/rating", {"score": "3.0"}),
    ):
        assert client.post(path, data={**data, "csrf": token}).status_code == 404
    with ctx.db.transaction() as s:
        assert (
            s.execute(select(OutboxItem).where(OutboxItem.team_id == ids["east"])).first() is None
        )
        assert s.execute(select(AssessmentRating)).first() is None


def test_an_admin_sees_every_cohort(world, ctx):
    _, ids = world
    with ctx.db.transaction() as s:
        w.coach(s, "admin@example.org", admin=True)
    client = coach_client(ctx, "admin@example.org")
    assert client.get(f"/teams/{ids['east']}").status_code == 200
    assert client.get(f"/cohorts/{ids['theirs']}").status_code == 200


def test_a_waiting_message_shows_escaped_and_masked_and_the_reply_reaches_the_team(world):
    ctx, ids = world
    say(ctx, "ana", SCRIPT, 1)
    client = coach_client(ctx)

    today = client.get("/").text
    assert "5 West" in today and "1 message waiting for your reply" in today
    assert "<script>alert" not in today

    page = client.get(f"/teams/{ids['west']}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert "1234567" not in page.text and "[removed]" in page.text
    assert "waiting for reply" in page.text

    sent = client.post(
        f"/teams/{ids['west']}/reply",
        data={"text": "Great start – try the POSS card at handover", "csrf": w.csrf_of(page.text)},
    )
    assert sent.status_code == 303
    with ctx.db.transaction() as s:
        rows = (
            s.execute(
                select(OutboxItem).where(
                    OutboxItem.team_id == ids["west"], OutboxItem.address.in_(["ana", "ben"])
                )
            )
            .scalars()
            .all()
        )
        replies = [r for r in rows if "POSS card at handover" in r.message.text]
        assert sorted(r.address for r in replies) == ["ana", "ben"]
        assert all(r.message.author_id is not None for r in replies)
        waiting = s.execute(
            select(Message).where(Message.team_id == ids["west"], Message.needs_reply.is_(True))
        ).first()
        assert waiting is None
    after = client.get(f"/teams/{ids['west']}").text
    assert "Reply queued to 2 recipients." in after
    assert "Casey Coach" in after
    assert "messages waiting" not in client.get("/").text


def test_an_empty_reply_sends_nothing(world):
    ctx, ids = world
    client = coach_client(ctx)
    page = client.get(f"/teams/{ids['west']}")
    client.post(f"/teams/{ids['west']}/reply", data={"text": "   ", "csrf": w.csrf_of(page.text)})
    assert "the message was empty, nothing was sent" in client.get(f"/teams/{ids['west']}").text
    with ctx.db.transaction() as s:
        assert (
            s.execute(select(OutboxItem).where(OutboxItem.team_id == ids["west"])).first() is None
        )


def test_today_puts_people_waiting_first_then_missing_data_then_plans(world):
    ctx, ids = world
    with ctx.db.transaction() as s:
        west = s.get(Team, ids["west"])
        s.add(
            PdsaCycle(
                team_id=west.id, number=1, state="planned", change_text="POSS card at handover"
            )
        )
        w.team(s, west.cohort, "4 North", state=TeamState.AWAITING_SIGNOFF)
    say(ctx, "ben", "Can we change the measure?", 1)
    text = coach_client(ctx).get("/").text
    order = [
        text.index("waiting for your reply"),
        text.index("No data for yesterday"),
        text.index("Waiting for the leader&#39;s sign-off"),
        text.index("PDSA cycle 1 to review"),
    ]
    assert order == sorted(order)


def test_data_in_for_yesterday_leaves_the_missing_list(world):
    ctx, ids = world
    with ctx.db.transaction() as s:
        west = s.get(Team, ids["west"])
        yesterday = local_date(utcnow(), west.cohort.timezone) - timedelta(days=1)
        for measure in west.cohort.measures:
            s.add(
                MeasureValue(
                    team_id=west.id,
                    measure_id=measure.id,
                    day=yesterday,
                    numerator=7,
                    denominator=9,
                    channel="console",
                )
            )
    text = coach_client(ctx).get("/").text
    assert "No data for yesterday" not in text


def test_marking_a_plan_reviewed_takes_it_off_today(world):
    ctx, ids = world
    with ctx.db.transaction() as s:
        cycle = PdsaCycle(team_id=ids["west"], number=1, state="planned", change_text="Teach-back")
        s.add(cycle)
        s.flush()
        cycle_id = cycle.id
    client = coach_client(ctx)
    page = client.get(f"/teams/{ids['west']}")
    assert "Mark cycle 1 reviewed" in page.text
    client.post(
        f"/teams/{ids['west']}/pdsa/{cycle_id}/reviewed", data={"csrf": w.csrf_of(page.text)}
    )
    assert "PDSA cycle 1 to review" not in client.get("/").text
    assert "Reviewed " in client.get(f"/teams/{ids['west']}").text


def test_rating_on_the_assessment_scale_keeps_history(world):
    ctx, ids = world
    client = coach_client(ctx)
    for score in ("2.0", "3.5"):
        w.post(
            client,
            f"/teams/{ids['west']}/rating",
            {"score": score, "comment": "moving"},
            form_page=f"/teams/{ids['west']}",
        )
    bad = w.post(
        client, f"/teams/{ids['west']}/rating", {"score": "3.7"}, form_page=f"/teams/{ids['west']}"
    )
    assert bad.status_code == 303
    page = client.get(f"/teams/{ids['west']}").text
    assert "3.5</strong> Improvement" in page and "2.0</strong> Activity, no changes" in page
    with ctx.db.transaction() as s:
        assert sorted(r.score for r in s.execute(select(AssessmentRating)).scalars()) == [2.0, 3.5]


def test_saved_snippets_fill_the_reply_box_and_belong_to_their_coach(world):
    ctx, ids = world
    client = coach_client(ctx)
    team_page = f"/teams/{ids['west']}"
    w.post(
        client,
        "/snippets",
        {"title": "Praise", "text": "Lovely run of data this week!", "next": team_page},
        form_page=team_page,
    )
    with ctx.db.transaction() as s:
        snippet_id = s.execute(select(FeedbackSnippet.id)).scalar_one()
    filled = client.get(f"{team_page}?snippet={snippet_id}").text
    assert ">Lovely run of data this week!</textarea>" in filled

    other = coach_client(ctx, "other@example.org")
    refused = w.post(other, f"/snippets/{snippet_id}/delete", {"next": "/"})
    assert refused.status_code == 303
    assert "there is no such snippet" in other.get("/").text
    w.post(client, f"/snippets/{snippet_id}/delete", {"next": team_page}, form_page=team_page)
    with ctx.db.transaction() as s:
        assert s.execute(select(FeedbackSnippet)).first() is None


def test_the_board_shows_days_filters_and_sorts(world):
    ctx, ids = world
    with ctx.db.transaction() as s:
        west = s.get(Team, ids["west"])
        w.team(s, west.cohort, "3 South")
        first_day = west.cohort.start_date
        for measure in west.cohort.measures:
            s.add(
                MeasureValue(
                    team_id=west.id,
                    measure_id=measure.id,
                    day=first_day,
                    numerator=3,
                    denominator=4,
                    channel="console",
                )
            )
    client = coach_client(ctx)
    board = client.get(f"/cohorts/{ids['mine']}").text
    assert board.index("3 South") < board.index("5 West")  # by name
    assert 'class="cell full"' in board and 'class="cell none"' in board
    label = f"{first_day:%a} {first_day.day} {first_day:%b}"
    west_row = board[board.index("5 West") :]
    south_row = board[board.index("3 South") : board.index("5 West")]
    n = len(west.cohort.measures)
    assert f'title="{label}: {n} of {n} measures"><span class="sr-only">{label}: full' in west_row
    assert f'title="{label}: 0 of {n} measures"><span class="sr-only">{label}: none' in south_row
    assert "75%" in board  # latest value of 5 West
    by_latest = client.get(f"/cohorts/{ids['mine']}?sort=latest").text
    assert by_latest.index("5 West") < by_latest.index("3 South")
    only = client.get(f"/cohorts/{ids['mine']}?q=south").text
    assert "3 South" in only and "5 West" not in only
    none = client.get(f"/cohorts/{ids['mine']}?q=zzz").text
    assert "No team matches these filters" in none


def test_csv_exports_have_the_contract_columns(world):
    ctx, ids = world
    say(ctx, "ana", "We started today", 1)
    client = coach_client(ctx)
    for what, columns in COLUMNS.items():
        response = client.get(f"/cohorts/{ids['mine']}/export/{what}.csv")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == columns
    messages = list(
        csv.DictReader(io.StringIO(client.get(f"/cohorts/{ids['mine']}/export/messages.csv").text))
    )
    assert any(r["text"] == "We started today" for r in messages)
    assert client.get(f"/cohorts/{ids['mine']}/export/secrets.csv").status_code == 404


def test_team_page_shows_members_channels_and_opt_outs(world):
    ctx, ids = world
    with ctx.db.transaction() as s:
        ben = person_at(s, "console", "ben")
        ben.opted_out_at = utcnow()
    page = coach_client(ctx).get(f"/teams/{ids['west']}").text
    assert "Ana" in page and "key contact" in page
    assert "opted out" in page


def test_the_chart_image_link_serves_a_png_and_refuses_forgeries(world):
    ctx, ids = world
    client = w.client_for(ctx)
    good = client.get(f"/media/chart/{make_token(ctx.secret, 'media', ids['west'])}.png")
    assert good.status_code == 200
    assert good.headers["content-type"] == "image/png"
    assert good.content.startswith(b"\x89PNG")
    forged = client.get(f"/media/chart/{make_token('wrong', 'media', ids['west'])}.png")
    assert forged.status_code == 404
    wrong_purpose = client.get(f"/media/chart/{make_token(ctx.secret, 'signoff', ids['west'])}.png")
    assert wrong_purpose.status_code == 404


def test_team_page_draws_each_measure_as_inline_svg(world):
    ctx, ids = world
    with ctx.db.transaction() as s:
        west = s.get(Team, ids["west"])
        measure = (
            s.execute(select(Measure).where(Measure.cohort_id == west.cohort_id)).scalars().first()
        )
        start = west.cohort.start_date
        n_measures = len(west.cohort.measures)
        for i in range(3):
            s.add(
                MeasureValue(
                    team_id=west.id,
                    measure_id=measure.id,
                    day=start + timedelta(days=i),
                    numerator=5 + i,
                    denominator=10,
                    channel="console",
                )
            )
        s.add(
            PdsaCycle(
                team_id=west.id,
                number=1,
                state="planned",
                change_text="<script>alert(1)</script> card",
                test_date=start + timedelta(days=1),
            )
        )
    page = coach_client(ctx).get(f"/teams/{ids['west']}").text
    assert page.count("<svg") == n_measures
    assert "<?xml" not in page and "could not be drawn" not in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # in the PDSA log and the chart label


def _chart_texts(page: str) -> list[list[str]]:
    """The words and numbers on each inline chart of a page, in order."""
    import re

    return [
        re.findall(r"<text[^>]*>([^<]*)</text>", svg)
        for svg in re.findall(r"<svg.*?</svg>", page, re.S)
    ]


def _median_label(texts: list[str]) -> str:
    """The value printed beside the chart's centre line ("Median", "Baseline median")."""
    return next(texts[i + 1] for i, t in enumerate(texts) if "edian" in t)


def test_team_page_charts_follow_every_new_value_correction_and_pdsa_cycle(world):
    """Charts are cached by their content: a change must show on the very next page view."""
    from dash.actions.data import record_value

    ctx, ids = world
    client = coach_client(ctx)

    def record(numerator: int) -> None:
        with ctx.db.transaction() as s:
            west = s.get(Team, ids["west"])
            measure = west.cohort.measures[0]
            for i in range(3):
                record_value(
                    s,
                    team=west,
                    measure=measure,
                    day=west.cohort.start_date + timedelta(days=i),
                    numerator=numerator,
                    denominator=10,
                    person=None,
                    channel="console",
                )

    record(5)
    first = _chart_texts(client.get(f"/teams/{ids['west']}").text)[0]
    assert _median_label(first) == "50%" and "5 West" in " ".join(first)
    assert _chart_texts(client.get(f"/teams/{ids['west']}").text)[0] == first  # from the cache
    record(9)  # a correction of the same three days
    corrected = _chart_texts(client.get(f"/teams/{ids['west']}").text)[0]
    assert _median_label(corrected) == "90%"
    with ctx.db.transaction() as s:
        west = s.get(Team, ids["west"])
        s.add(
            PdsaCycle(
                team_id=west.id,
                number=1,
                state="planned",
                change_text="bedside card",
                test_date=west.cohort.start_date + timedelta(days=1),
            )
        )
    noted = " ".join(_chart_texts(client.get(f"/teams/{ids['west']}").text)[0])
    assert "bedside card" in noted


def _statements(ctx, client, path: str) -> int:
    """SQL statements of one page load (which must succeed)."""
    with StatementCounter(ctx.db.engine) as counter:
        assert client.get(path).status_code == 200
    return counter.count


def test_team_page_queries_do_not_grow_with_members_or_messages(world):
    """No query per member, message or measure value: the page's SQL stays the same size."""
    ctx, ids = world
    client = coach_client(ctx)
    before = _statements(ctx, client, f"/teams/{ids['west']}")
    with ctx.db.transaction() as s:
        for n in range(5):
            nurse = w.nurse(s, f"Nurse {n}", f"n{n}")
            s.add(Membership(team_id=ids["west"], person_id=nurse.id, role=Role.MEMBER.value))
    for n in range(5):
        say(ctx, "ana", f"hello {n}", n)
    page = client.get(f"/teams/{ids['west']}").text
    assert "Nurse 4" in page and "hello 4" in page
    assert _statements(ctx, client, f"/teams/{ids['west']}") == before


def test_board_queries_do_not_grow_with_teams(world):
    """The board reads each table once for the whole cohort, not once per team or day."""
    ctx, ids = world
    client = coach_client(ctx)
    before = _statements(ctx, client, f"/cohorts/{ids['mine']}")
    with ctx.db.transaction() as s:
        cohort = s.get(Team, ids["west"]).cohort
        for n in range(4):
            team = w.team(s, cohort, f"Ward {n}", members=[w.nurse(s, f"Nurse {n}", f"w{n}")])
            for measure in cohort.measures:
                s.add(
                    MeasureValue(
                        team_id=team.id,
                        measure_id=measure.id,
                        day=cohort.start_date,
                        numerator=n,
                        denominator=4,
                        channel="console",
                    )
                )
            s.add(PdsaCycle(team_id=team.id, number=1, state="planned", change_text="card"))
    for n in range(4):
        say(ctx, f"w{n}", "hello", n)
    board = client.get(f"/cohorts/{ids['mine']}").text
    assert all(f"Ward {n}" in board for n in range(4))
    assert _statements(ctx, client, f"/cohorts/{ids['mine']}") == before


def test_times_show_in_the_zone_the_browser_reports(world):
    # tz.js stores the zone URL-encoded, as a cookie value must be; the page must decode it.
    ctx, _ids = world
    client = coach_client(ctx)
    client.cookies.set("tz", "America%2FNew_York")
    assert "Times in America/New_York" in client.get("/").text
    client.cookies.set("tz", "Not%2FA_Zone")
    assert "Times in UTC" in client.get("/").text
