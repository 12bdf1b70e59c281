"""messages.channel takes any channel's name: a new channel needs no migration

Revision ID: 0003c
Revises: 0002
Create Date: 2026-12-08 01:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003c'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The channels are listed by bots.registry, which the schema cannot see.
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_constraint(op.f('ck_messages_channel'), type_='check')


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_messages_channel'),
            sa.text("channel IN ('telegram', 'sms', 'whatsapp', 'console', 'web')"),
        )
