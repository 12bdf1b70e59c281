"""addresses: one row per channel address instead of a column per channel on people

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 01:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dash.models.base

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String(length=254)

#: (channel, the people column naming the sender, the column naming where to write, the
#: column holding a display name, when they last wrote from it) for each old channel column.
#: The person's last contact goes to the channel they preferred; WhatsApp keeps its own
#: window timestamp.
_CARRIED = (
    ("sms", "phone_e164", "phone_e164", None, None),
    ("whatsapp", "whatsapp_e164", "whatsapp_e164", None, "whatsapp_last_inbound_at"),
    ("telegram", "telegram_user_id", "telegram_chat_id", "telegram_username", None),
    ("console", "console_address", "console_address", None, None),
    ("email", "email", "email", None, None),
)


def upgrade() -> None:
    op.create_table('addresses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=True),
    sa.Column('chat_id', sa.String(length=254), nullable=True),
    sa.Column('display', sa.String(length=254), nullable=True),
    sa.Column('last_inbound_at', dash.models.base.UTCDateTime(), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('created_at', dash.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("channel NOT IN ('sms', 'whatsapp') OR address IS NULL OR address LIKE '+%'", name=op.f('ck_addresses_phone_e164')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_addresses_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addresses')),
    sa.UniqueConstraint('channel', 'address', name=op.f('uq_addresses_channel_address'))
    )
    with op.batch_alter_table('addresses') as batch_op:
        batch_op.create_index(batch_op.f('ix_addresses_person_id'), ['person_id'], unique=False)

    for channel, sender, chat, display, window in _CARRIED:
        last = (
            f"{window}" if window else
            f"CASE WHEN preferred_channel = '{channel}' THEN last_inbound_at END"
        )
        # A sender known only by a display name (a leader named by @username) has no address yet.
        present = f"{sender} IS NOT NULL" + (f" OR {display} IS NOT NULL" if display else "")
        op.execute(
            "INSERT INTO addresses (person_id, channel, address, chat_id, display,"  # noqa: S608 (constants only)
            " last_inbound_at, verified, created_at)"
            f" SELECT id, '{channel}', CAST({sender} AS VARCHAR(254)),"
            f" CAST({chat} AS VARCHAR(254)), {display or 'NULL'}, {last},"
            f" {'TRUE' if channel == 'telegram' else 'FALSE'}"
            f" AND {sender} IS NOT NULL, created_at"
            f" FROM people WHERE {present} ORDER BY id"
        )

    # A team's group chat: any channel's, not only Telegram's.
    with op.batch_alter_table('teams') as batch_op:
        batch_op.add_column(sa.Column('group_channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('group_address', sa.String(length=254), nullable=True))
    op.execute(
        "UPDATE teams SET group_channel = 'telegram',"
        " group_address = CAST(telegram_group_chat_id AS VARCHAR(254))"
        " WHERE telegram_group_chat_id IS NOT NULL"
    )
    with op.batch_alter_table('teams') as batch_op:
        batch_op.drop_constraint(op.f('uq_teams_telegram_group_chat_id'), type_='unique')
        batch_op.drop_column('telegram_group_chat_id')
        batch_op.create_unique_constraint(
            op.f('uq_teams_group_channel_group_address'), ['group_channel', 'group_address']
        )

    # Channels come from the channel registry: a new one must not need a migration.
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_constraint(op.f('ck_messages_channel'), type_='check')

    with op.batch_alter_table('people') as batch_op:
        for name in ('console_address', 'phone_e164', 'telegram_user_id', 'whatsapp_e164'):
            batch_op.drop_constraint(op.f(f'uq_people_{name}'), type_='unique')
        for name in ('phone_e164', 'whatsapp_e164'):
            batch_op.drop_constraint(op.f(f'ck_people_{name}'), type_='check')
        for name in (
            'phone_e164', 'whatsapp_e164', 'telegram_user_id', 'telegram_chat_id',
            'telegram_username', 'console_address', 'whatsapp_last_inbound_at',
            'last_inbound_at',
        ):
            batch_op.drop_column(name)


def _one(channel: str, column: str, how: str = "MAX") -> str:
    return (
        f"(SELECT {how}({column}) FROM addresses"  # noqa: S608 (constants only)
        f" WHERE addresses.person_id = people.id AND addresses.channel = '{channel}')"
    )


def downgrade() -> None:
    with op.batch_alter_table('people') as batch_op:
        batch_op.add_column(sa.Column('phone_e164', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('whatsapp_e164', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('telegram_user_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('telegram_chat_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('telegram_username', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('console_address', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('whatsapp_last_inbound_at', dash.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_inbound_at', dash.models.base.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE people SET"  # noqa: S608 (constants only)
        f" phone_e164 = {_one('sms', 'address')},"
        f" whatsapp_e164 = {_one('whatsapp', 'address')},"
        f" telegram_user_id = CAST({_one('telegram', 'address')} AS BIGINT),"
        f" telegram_chat_id = CAST({_one('telegram', 'chat_id')} AS BIGINT),"
        f" telegram_username = {_one('telegram', 'display')},"
        f" console_address = {_one('console', 'address')},"
        f" whatsapp_last_inbound_at = {_one('whatsapp', 'last_inbound_at')},"
        " last_inbound_at = (SELECT MAX(last_inbound_at) FROM addresses"
        " WHERE addresses.person_id = people.id)"
    )
    with op.batch_alter_table('people') as batch_op:
        batch_op.create_check_constraint(op.f('ck_people_phone_e164'), "phone_e164 IS NULL OR phone_e164 LIKE '+%'")
        batch_op.create_check_constraint(op.f('ck_people_whatsapp_e164'), "whatsapp_e164 IS NULL OR whatsapp_e164 LIKE '+%'")
        for name in ('console_address', 'phone_e164', 'telegram_user_id', 'whatsapp_e164'):
            batch_op.create_unique_constraint(op.f(f'uq_people_{name}'), [name])
    with op.batch_alter_table('teams') as batch_op:
        batch_op.add_column(sa.Column('telegram_group_chat_id', sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE teams SET telegram_group_chat_id = CAST(group_address AS BIGINT)"
        " WHERE group_channel = 'telegram'"
    )
    with op.batch_alter_table('teams') as batch_op:
        batch_op.drop_constraint(op.f('uq_teams_group_channel_group_address'), type_='unique')
        batch_op.drop_column('group_address')
        batch_op.drop_column('group_channel')
        batch_op.create_unique_constraint(
            op.f('uq_teams_telegram_group_chat_id'), ['telegram_group_chat_id']
        )
    with op.batch_alter_table('messages') as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_messages_channel'),
            "channel IN ('telegram', 'sms', 'whatsapp', 'console', 'web')",
        )
    with op.batch_alter_table('addresses') as batch_op:
        batch_op.drop_index(batch_op.f('ix_addresses_person_id'))
    op.drop_table('addresses')
