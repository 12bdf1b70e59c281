"""messages and outbox rows hold an address as long as an e-mail address may be

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('messages', 'outbox')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(
                'address', existing_type=sa.String(length=64), type_=sa.String(length=254)
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(
                'address', existing_type=sa.String(length=254), type_=sa.String(length=64)
            )
