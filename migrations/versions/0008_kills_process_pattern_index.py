"""An index for `--process` globs on PostgreSQL whatever the database's collation.

`history kills --process 'java*'` asks `process LIKE 'java%'`. PostgreSQL turns LIKE's
literal prefix into a range of a btree index only where the index compares strings byte
by byte: a plain index does under the C collation alone, and a database created with
en_US.UTF-8 (or an ICU locale) read every kill instead. An index of the pattern operator
class (varchar_pattern_ops) compares byte by byte under any collation, so the prefix is
its range. SQLite gets none: it has no operator classes, and the store gives it the range
itself on its BINARY collation (store/queries.py, _glob).

Revision ID: 0008
Revises: 0007 (the head when it landed; the chain stays one line)
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # A plain CREATE INDEX: no row is touched; writers wait while it is built (a fraction
        # of a second for 100,000 kills).
        op.create_index('ix_kills_process_pattern', 'kills', ['process', 'time'], unique=False,
                        postgresql_ops={'process': 'varchar_pattern_ops'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_kills_process_pattern', table_name='kills')
