"""A kill's pid may be null: systemd-oomd kills a cgroup and names no process.

Records written before stored pid 0 for those kills; they become null.

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('kills', schema=None) as batch_op:
        batch_op.alter_column('pid', existing_type=sa.INTEGER(), nullable=True)
    op.execute("UPDATE kills SET pid = NULL WHERE pid = 0 AND killer = 'systemd-oomd'")


def downgrade() -> None:
    op.execute("UPDATE kills SET pid = 0 WHERE pid IS NULL")
    with op.batch_alter_table('kills', schema=None) as batch_op:
        batch_op.alter_column('pid', existing_type=sa.INTEGER(), nullable=False)
