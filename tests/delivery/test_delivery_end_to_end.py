"""A unit's whole story on each channel, through the real webhooks, engine, outbox and worker.

One scenario, three channels: a key contact enrols the unit and names a leader who signs
off; a nurse joins with the team's code, reports a week of daily counts and corrects one;
the key contact plans, tests, studies and adopts a change; the nurse says STOP and START;
and a coach's reply reaches the team. Each phone posts what the provider would post (signed)
and reads what reached the fake provider; the worker drains the outbox after every message.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bots.delivery import DeliveryWorker
from bots.telegram.webhook import webhook_secret
from dash.app.server import create_app
from dash.context import AppContext
from dash.db import Database
from dash.models import MeasureValue, PdsaCycle, Person, Team
from dash.timeutil import local_date, utcnow
from tests.fakes.signing import telegram_headers, twilio_headers
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.support.delivery import (
    configure,
    free_port,
    served,
    telegram_env,
    twilio_env,
    worker_for,
)

TZ = "America/Chicago"
_ids = itertools.count(900_000)


@dataclass
class World:
    """The served app, the fakes, and one worker on one event loop (as in `dash serve`)."""

    ctx: AppContext
    origin: str
    worker: DeliveryWorker
    telegram: FakeTelegram
    twilio: FakeTwilio
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))  # busy CI
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def post(self, path: str, **kwargs: Any) -> None:
        answer = self.http.post(self.origin + path, **kwargs)
        assert answer.status_code == 200, answer.text
        self.drain()

    def drain(self) -> None:
        self.loop.run_until_complete(self.worker.drain_once())

    def close(self) -> None:
        self.loop.run_until_complete(self.worker.close())
        self.loop.close()
        self.http.close()


@dataclass
class TelegramPhone:
    """A person in a private chat with the bot."""

    world: World
    name: str
    username: str
    user_id: int = field(default_factory=lambda: next(_ids))
    seen: int = 0

    def _user(self) -> dict[str, Any]:
        first, _, last = self.name.partition(" ")
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": first,
            "last_name": last,
            "username": self.username,
            "language_code": "en",
        }

    def _chat(self) -> dict[str, Any]:
        return {"id": self.user_id, "type": "private", "first_name": self.name.split()[0]}

    def say(self, text: str) -> list[str]:
        message: dict[str, Any] = {
            "message_id": next(_ids),
            "from": self._user(),
            "chat": self._chat(),
            "date": int(utcnow().timestamp()),
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        return self._post({"update_id": next(_ids), "message": message})

    def press(self, data: str, label: str) -> list[str]:
        query = {
            "id": str(next(_ids)),
            "from": self._user(),
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 1,
                "chat": self._chat(),
                "date": int(utcnow().timestamp()),
                "text": "…",
            },
        }
        return self._post({"update_id": next(_ids), "callback_query": query})

    def _post(self, update: dict[str, Any]) -> list[str]:
        secret = webhook_secret(self.world.ctx)
        self.world.post("/webhooks/telegram", json=update, headers=telegram_headers(secret))
        return self.news()

    def inbox(self) -> list[str]:
        return self.world.telegram.sent_texts(self.user_id)

    def last_picture(self) -> bytes:
        """The image of the last sendPhoto to this chat, as uploaded."""
        photos = [
            c for c in self.world.telegram.sent_messages(self.user_id) if c.method == "sendPhoto"
        ]
        return photos[-1].files["photo"].data

    def news(self) -> list[str]:
        texts = self.inbox()
        new, self.seen = texts[self.seen :], len(texts)
        return new


@dataclass
class TwilioPhone:
    """A phone texting our SMS number, or our WhatsApp number."""

    world: World
    channel: str
    number: str
    seen: int = 0

    @property
    def address(self) -> str:
        return self.number if self.channel == "sms" else f"whatsapp:{self.number}"

    def say(self, text: str) -> list[str]:
        settings = self.world.ctx.settings
        to = settings.twilio_sms_from if self.channel == "sms" else settings.twilio_whatsapp_from
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.world.twilio.account_sid,
            "From": self.address,
            "To": str(to),
            "Body": text,
            "NumMedia": "0",
        }
        headers = twilio_headers(
            str(settings.twilio_auth_token), settings.url("/webhooks/twilio"), params
        )
        self.world.post("/webhooks/twilio", data=params, headers=headers)
        return self.news()

    def press(self, data: str, label: str) -> list[str]:
        return self.say(label)  # no buttons here: the text says "reply 1-5"

    def last_picture(self) -> bytes:
        """The image behind the last MediaUrl sent here, fetched as Twilio would."""
        with_media = [
            c for c in self.world.twilio.sent_messages(to=self.address) if c.params.get("MediaUrl")
        ]
        (url,) = with_media[-1].params["MediaUrl"]
        answer = self.world.http.get(url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        return answer.content

    def inbox(self) -> list[str]:
        return [
            str(c.params.get("Body") or f"[template {c.params.get('ContentSid')}]")
            for c in self.world.twilio.sent_messages(to=self.address)
        ]

    def news(self) -> list[str]:
        texts = self.inbox()
        new, self.seen = texts[self.seen :], len(texts)
        return new


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    fake_telegram: FakeTelegram,
    fake_twilio: FakeTwilio,
) -> Iterator[World]:
    port = free_port()
    ctx = configure(
        monkeypatch,
        db,
        **telegram_env(fake_telegram),
        **twilio_env(fake_twilio),
        public_url=f"http://127.0.0.1:{port}",
        # Pacing is tested in test_delivery_limits; here it would only make the story slow.
        telegram_per_chat_per_second="100",
        twilio_sms_per_second="100",
        twilio_whatsapp_per_second="100",
    )
    with served(create_app(ctx, background=False), port) as origin:
        world = World(
            ctx, origin, worker_for(ctx, "telegram", "sms", "whatsapp"), fake_telegram, fake_twilio
        )
        yield world
        world.close()


def phones(world: World, channel: str) -> tuple[Any, Any, Any, str]:
    """(key contact, leader, nurse, how the key contact names the leader) on `channel`."""
    if channel == "telegram":
        return (
            TelegramPhone(world, "Kim Key", "kimkey"),
            TelegramPhone(world, "Lee Lead", "leelead"),
            TelegramPhone(world, "Nia Nurse", "nianurse"),
            "@leelead",
        )
    numbers = ["+13125550101", "+13125550102", "+13125550103"]
    kc, leader, nurse = (TwilioPhone(world, channel, n) for n in numbers)
    return kc, leader, nurse, numbers[1]


@pytest.mark.parametrize("channel", ["telegram", "sms", "whatsapp"])
def test_a_units_dash_from_enrolment_to_coaching(world: World, db: Database, channel: str) -> None:
    from dash.actions import pdsa as pdsa_actions
    from dash.actions.coaches import add_coach
    from dash.actions.cohorts import create_cohort
    from dash.actions.queueing import queue_to_person
    from dash.actions.threads import coach_reply

    today = local_date(utcnow(), TZ)
    with db.transaction() as s:
        coach = add_coach(s, email="cora@example.org", name="Cora Coach")
        cohort = create_cohort(
            s,
            topic="sepsis",
            start=today - timedelta(days=8),
            timezone=TZ,
            name="Sepsis Dash",
            coaches=[coach],
        )
        cohort_code, coach_id = cohort.enrolment_code, coach.id
    kc, leader, nurse, leader_contact = phones(world, channel)

    # -- enrolment: the key contact's questions, the matrix, the leader's sign-off -----------
    assert kc.say(f"JOIN {cohort_code}")
    assert kc.say("Kim Key")
    assert kc.say("Mercy General")
    assert kc.say("5 West")
    for criterion, score in zip(
        ("importance", "influence", "project_length", "expense", "frequency"), "45434", strict=True
    ):
        assert kc.press(f"score:{criterion}:{score}", score)
    assert kc.say("Lee Lead, CNO")
    assert kc.say(leader_contact)
    leader.say("YES")
    with db.transaction() as s:
        team = s.execute(select(Team)).scalar_one()
        assert team.state == "enrolled", team.state
        join_code, team_id = str(team.join_code), team.id
    assert any(join_code in text for text in kc.inbox()), "the key contact was given the code"

    # -- a nurse joins -------------------------------------------------------------------------
    assert nurse.say(f"JOIN {join_code}")
    nurse.say("Nia Nurse")
    with db.transaction() as s:
        members = s.execute(select(Person).where(Person.name == "Nia Nurse")).scalars().all()
        assert len(members) == 1
        nurse_id = members[0].id

    # -- a week of data, one day corrected ------------------------------------------------------
    week = [today - timedelta(days=n) for n in range(7, 0, -1)]
    for n, day in enumerate(week):
        assert nurse.say(f"{day.isoformat()} {n + 2}/{n + 4}")
    assert nurse.say(f"{week[2].isoformat()} 3/5")  # a correction
    assert nurse.say("12 of 9")  # bad input: said what was expected, nothing recorded
    with db.transaction() as s:
        current = (
            s.execute(
                select(MeasureValue).where(MeasureValue.team_id == team_id, MeasureValue.is_current)
            )
            .scalars()
            .all()
        )
        assert sorted(v.day for v in current) == week
        corrected = next(v for v in current if v.day == week[2])
        assert (corrected.numerator, corrected.denominator) == (3, 5)
        total = s.execute(select(func.count(MeasureValue.id))).scalar_one()
        assert total == 8  # the replaced value is kept as history

    # -- the run chart, as a picture ---------------------------------------------------------
    nurse.say("CHART")
    png = nurse.last_picture()
    assert png.startswith(b"\x89PNG"), "the chart arrived as a PNG"

    # -- a full PDSA cycle ----------------------------------------------------------------------
    assert kc.say("PLAN")
    assert kc.say("Sepsis screening at triage by the charge nurse")
    assert kc.say("Most patients screened within 1 hour")
    assert kc.say("Charge nurse, 5 West, tomorrow day shift")
    assert kc.say("Screened / arrivals")
    with db.transaction() as s:
        cycle = s.execute(select(PdsaCycle).where(PdsaCycle.team_id == team_id)).scalar_one()
        assert cycle.state == "planned"
        planner = s.get(Person, cycle.created_by_id)
        assert planner is not None
        # What the scheduler does after the test day: ask how it went.
        question = pdsa_actions.ask_followup(s, cycle)
        queue_to_person(s, planner, question, team=team_id)
    world.drain()
    assert kc.news()
    assert kc.say("We screened 9 of 10 arrivals")
    assert kc.say("Better than predicted; the form was quick")
    kc.press("act:adopt", "Adopt")
    kc.say("SKIP")
    with db.transaction() as s:
        cycle = s.execute(select(PdsaCycle).where(PdsaCycle.team_id == team_id)).scalar_one()
        assert (cycle.state, cycle.act) == ("acted", "adopt")
        assert cycle.do_notes and cycle.study_notes

    # -- STOP and START ---------------------------------------------------------------------------
    nurse.say("STOP")
    with db.transaction() as s:
        person = s.get(Person, nurse_id)
        assert person is not None and person.opted_out
        coach = s.get(Person, coach_id)
        assert coach is not None
        coach_reply(s, coach=coach, team=s.get(Team, team_id), text="Great week, team!")
    world.drain()
    assert not any("Great week" in t for t in nurse.news()), "nothing after STOP"
    assert any("Great week" in t for t in kc.news())
    nurse.say("START")
    with db.transaction() as s:
        person = s.get(Person, nurse_id)
        assert person is not None and not person.opted_out

    # -- a coach's reply reaches the team --------------------------------------------------------
    with db.transaction() as s:
        coach = s.get(Person, coach_id)
        assert coach is not None
        coach_reply(s, coach=coach, team=s.get(Team, team_id), text="Keep screening at triage!")
    world.drain()
    assert any("Keep screening at triage!" in t for t in nurse.news())
    assert any("Keep screening at triage!" in t for t in kc.news())
