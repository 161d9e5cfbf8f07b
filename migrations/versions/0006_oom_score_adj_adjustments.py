"""Adjustments: every write to a process's oom_score_adj the tracepoint saw, with its writer.

Revision ID: 0006
Revises: 0003
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('adjustments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('boot_id', sa.String(length=64), nullable=True),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('process', sa.String(length=255), nullable=False),
    sa.Column('cmdline', sa.Text(), nullable=True),
    sa.Column('unit', sa.Text(), nullable=True),
    sa.Column('old_adj', sa.Integer(), nullable=True),
    sa.Column('new_adj', sa.Integer(), nullable=False),
    sa.Column('critical', sa.Boolean(), nullable=False),
    sa.Column('by_watchdog', sa.Boolean(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=True),
    sa.Column('writer_pid', sa.Integer(), nullable=True),
    sa.Column('writer_tid', sa.Integer(), nullable=False),
    sa.Column('writer_process', sa.String(length=255), nullable=False),
    sa.Column('writer_cmdline', sa.Text(), nullable=True),
    sa.Column('writer_unit', sa.Text(), nullable=True),
    sa.Column('writer_uid', sa.BigInteger(), nullable=True),
    sa.Column('writer_exited', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.create_index('ix_adjustments_host_time', ['host', 'time'], unique=False)
        batch_op.create_index('ix_adjustments_process', ['process'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.drop_index('ix_adjustments_process')
        batch_op.drop_index('ix_adjustments_host_time')
    op.drop_table('adjustments')
