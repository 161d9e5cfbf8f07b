"""Indexes for the history at scale: every history ordering and filter, the summary,
the metrics' counts, retention, and the outbox's foreign keys.

`kills.process` alone becomes `(process, time)`: `--process java --since 7d` is then one
range of the index, and a glob with a literal prefix (`'java*'`) a range scan of it.

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

NEW = (
    ('ix_samples_time', 'samples', ['time']),
    ('ix_kills_time', 'kills', ['time']),
    ('ix_kills_process_time', 'kills', ['process', 'time']),
    ('ix_kills_host_recorded', 'kills', ['host', 'recorded_at']),
    ('ix_alerts_started', 'alerts', ['started_at']),
    ('ix_notifications_created', 'notifications', ['created_at']),
    ('ix_notifications_alert', 'notifications', ['alert_id', 'channel']),
    ('ix_notifications_mute', 'notifications', ['mute_id']),
    ('ix_protections_host_time', 'protections', ['host', 'time']),
    ('ix_protections_time', 'protections', ['time']),
)


def upgrade() -> None:
    # Plain CREATE INDEX on both engines: no table is rebuilt, no row is touched.
    for name, table, columns in NEW:
        op.create_index(name, table, columns, unique=False)
    op.drop_index('ix_kills_process', table_name='kills')


def downgrade() -> None:
    op.create_index('ix_kills_process', 'kills', ['process'], unique=False)
    for name, table, _ in reversed(NEW):
        op.drop_index(name, table_name=table)
