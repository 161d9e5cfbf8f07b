"""Adjustments: how each change was found (its event, or a re-read after events were lost),
and why its writer is unknown.

When the trace instance's buffer overflows, the daemon re-reads the watched processes'
oom_score_adj and records a change the events it read do not account for with
`found_by` 'resync' and `writer_unknown` saying why nobody can be named (the events
lost). Rows written before this revision were all read from their own event:
'tracepoint', with no such reason.

Revision ID: 0009
Revises: 0008 (the head when it landed; the chain stays one line)
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table is rewritten (SQLite writes the column
    # into the schema; PostgreSQL 11+ keeps the default in the catalogue), and every
    # existing row reads 'tracepoint', which it was.
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('found_by', sa.String(length=16), server_default='tracepoint',
                                      nullable=False))
        batch_op.add_column(sa.Column('writer_unknown', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.drop_column('writer_unknown')
        batch_op.drop_column('found_by')
