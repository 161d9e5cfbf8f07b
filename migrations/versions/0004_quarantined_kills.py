"""Quarantined kills: a kill the database would not store, kept with its raw text and the error.

Revision ID: 0004
Revises: 0005 (0005 and 0006 landed first; the chain stays one line)
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('quarantined_kills',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('process', sa.String(length=255), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantined_kills', schema=None) as batch_op:
        batch_op.create_index('ix_quarantined_kills_host_time', ['host', 'recorded_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('quarantined_kills', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantined_kills_host_time')
    op.drop_table('quarantined_kills')
