"""An index for the kills per cgroup: `history summary` counts them by
coalesce(task_memcg, memcg), which read every kill row whole (its task table and memory
state included: 100,000 kills are some 300 MB). With both columns in an index the count
reads the index alone.

Revision ID: 0007
Revises: 0004 (the head when it landed; the chain stays one line)
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A plain CREATE INDEX on both engines: no table is rebuilt, no row is touched.
    op.create_index('ix_kills_cgroup', 'kills', ['task_memcg', 'memcg'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_kills_cgroup', table_name='kills')
