"""Cgroup samples: readings of the memory cgroups worth keeping (above warn, and the top N).

Revision ID: 0005
Revises: 0006 (0006 landed first; the chain stays linear with one head)
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('cgroup_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('limit_bytes', sa.BigInteger(), nullable=True),
    sa.Column('high_bytes', sa.BigInteger(), nullable=True),
    sa.Column('usage_bytes', sa.BigInteger(), nullable=False),
    sa.Column('working_set_bytes', sa.BigInteger(), nullable=False),
    sa.Column('working_set_percent', sa.Float(), nullable=True),
    sa.Column('oom_kill', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cgroup_samples', schema=None) as batch_op:
        batch_op.create_index('ix_cgroup_samples_host_time', ['host', 'time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cgroup_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_cgroup_samples_host_time')
    op.drop_table('cgroup_samples')
