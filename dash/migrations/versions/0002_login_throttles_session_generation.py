"""login throttles per client address and a session generation per coach

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 23:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dash.models.base

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_throttles',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', dash.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint('failures >= 0', name=op.f('ck_login_throttles_failures')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttles'))
    )
    # Existing sessions carry no generation and end once: every coach logs in again.
    with op.batch_alter_table('people') as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch_op:
        batch_op.drop_column('session_generation')
    op.drop_table('login_throttles')
