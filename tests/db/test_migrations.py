"""Migrations build the schema the models describe, from empty, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, text

from dash import migrate
from dash.db import Database
from dash.models import Base


def test_empty_to_head_matches_models_and_repeats_safely(settings) -> None:
    db = Database(settings.database_url)
    before, after = migrate.upgrade(db)
    assert before is None
    assert after == migrate.head_revision(db)
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    # The models and the migrations agree (what `alembic check` verifies).
    migrate.check(db)
    # Idempotent: a second run changes nothing.
    assert migrate.upgrade(db) == (after, after)
    db.dispose()


def test_downgrade_to_empty_and_back(settings) -> None:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    assert "teams" not in inspect(db.engine).get_table_names()
    migrate.upgrade(db)
    assert "teams" in inspect(db.engine).get_table_names()
    db.dispose()


def test_a_migrated_database_takes_messages_of_any_channel(settings) -> None:
    """A new channel is a package and a registry line: the schema does not list channels."""
    from sqlalchemy import text

    db = Database(settings.database_url)
    migrate.upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO messages (direction, channel, address, text, kind, status,"
                " needs_reply, created_at, updated_at) VALUES ('out', 'pigeon', 'loft-1', 'hi',"
                " 'reply', 'queued', FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        assert conn.execute(text("SELECT channel FROM messages")).scalar_one() == "pigeon"
#: People as 0002 stored them: one column per channel (a member on Telegram, a leader known only
#: by @username, an SMS and WhatsApp member, a console tester, and a coach with an e-mail).
_OLD_PEOPLE = (
    "INSERT INTO people (id, name, language, phone_e164, whatsapp_e164, telegram_user_id,"
    " telegram_chat_id, telegram_username, console_address, preferred_channel, email, is_admin,"
    " is_coach, failed_logins, session_generation, whatsapp_last_inbound_at, last_inbound_at,"
    " created_at) VALUES"
    " (1, 'Ana', 'en', NULL, NULL, 7001, 7001, 'ana_n', NULL, 'telegram', NULL, FALSE, FALSE, 0,"
    " 0, NULL, '2026-12-01 08:00:00', '2026-11-01 00:00:00'),"
    " (2, 'Lee', 'en', NULL, NULL, NULL, NULL, 'lee_leader', NULL, 'telegram', NULL, FALSE,"
    " FALSE, 0, 0, NULL, NULL, '2026-11-01 00:00:00'),"
    " (3, 'Sam', 'es', '+15550001111', '+15550002222', NULL, NULL, NULL, NULL, 'whatsapp', NULL,"
    " FALSE, FALSE, 0, 0, '2026-12-02 09:00:00', '2026-12-02 09:00:00', '2026-11-01 00:00:00'),"
    " (4, 'Tess', 'en', NULL, NULL, NULL, NULL, NULL, '+15550003333', 'console', NULL, FALSE,"
    " FALSE, 0, 0, NULL, '2026-12-03 10:00:00', '2026-11-01 00:00:00'),"
    " (5, 'Coach', 'en', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'coach@example.org', FALSE,"
    " TRUE, 0, 0, NULL, NULL, '2026-11-01 00:00:00')"
)

#: A team whose Telegram group is linked, with Ana as its member.
_OLD_TEAM = (
    "INSERT INTO organisations (id, name, created_at) VALUES (1, 'St Mary', '2026-11-01')",
    "INSERT INTO units (id, organisation_id, name, created_at) VALUES (1, 1, '5 West',"
    " '2026-11-01')",
    "INSERT INTO cohorts (id, name, topic, curriculum_version, start_date, timezone,"
    " session_weekdays, session_time, session_minutes, enrolment_code, schedule_version,"
    " sync_version, session_overrides, created_at) VALUES (1, 'Spring', 'opioid-safety', 1,"
    " '2026-12-07', 'UTC', 'mon', '12:30:00', 45, 'SPRING', 1, 1, '{}', '2026-11-01')",
    "INSERT INTO teams (id, cohort_id, unit_id, name, state, consent_share,"
    " telegram_group_chat_id, created_at) VALUES (1, 1, 1, '5 West', 'enrolled', FALSE,"
    " -1009876, '2026-11-01')",
    "INSERT INTO memberships (id, team_id, person_id, role, joined_at) VALUES"
    " (1, 1, 1, 'member', '2026-11-02')",
)
_OLD_COLUMNS = (
    "SELECT id, phone_e164, whatsapp_e164, telegram_user_id, telegram_chat_id, telegram_username,"
    " console_address, whatsapp_last_inbound_at FROM people ORDER BY id"
)


def test_0003_carries_channel_columns_into_addresses_and_back(settings) -> None:
    db = Database(settings.database_url)
    migrate.upgrade(db, "0002")
    with db.engine.begin() as conn:
        conn.execute(text(_OLD_PEOPLE))
        before = conn.execute(text(_OLD_COLUMNS)).all()
    with db.engine.begin() as conn:
        for statement in _OLD_TEAM:
            conn.execute(text(statement))
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT group_channel, group_address FROM teams")).all() == [
            ("telegram", "-1009876")
        ]
        # Rows that refer to people outlive the rebuilt table (SQLite rebuilds it).
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 1
        rows = conn.execute(
            text(
                "SELECT person_id, channel, address, chat_id, display, last_inbound_at"
                " FROM addresses ORDER BY person_id, channel"
            )
        ).all()
    found = [(r[0], r[1], r[2], r[3], r[4], str(r[5])[:16] if r[5] else None) for r in rows]
    assert found == [
        (1, "telegram", "7001", "7001", "ana_n", "2026-12-01 08:00"),
        (2, "telegram", None, None, "lee_leader", None),
        (3, "sms", "+15550001111", "+15550001111", None, None),
        (3, "whatsapp", "+15550002222", "+15550002222", None, "2026-12-02 09:00"),
        (4, "console", "+15550003333", "+15550003333", None, "2026-12-03 10:00"),
        (5, "email", "coach@example.org", "coach@example.org", None, None),
    ]
    assert "phone_e164" not in {c["name"] for c in inspect(db.engine).get_columns("people")}
    migrate.downgrade(db, "0002")
    with db.engine.connect() as conn:
        assert conn.execute(text(_OLD_COLUMNS)).all() == before
        assert conn.execute(text("SELECT telegram_group_chat_id FROM teams")).all() == [
            (-1009876,)
        ]
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 1
    assert "addresses" not in inspect(db.engine).get_table_names()
    db.dispose()
