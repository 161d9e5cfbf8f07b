"""Initial schema: samples, kills, alerts, the notification outbox, cursors, protections, mutes.

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 20:39:32.039705

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_host_key_status', ['host', 'key', 'status'], unique=False)
        batch_op.create_index('ix_alerts_host_started', ['host', 'started_at'], unique=False)

    op.create_table('cursors',
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('host', 'source')
    )
    op.create_table('kills',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('boot_id', sa.String(length=64), nullable=True),
    sa.Column('time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mono_usec', sa.BigInteger(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('process', sa.String(length=255), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=True),
    sa.Column('total_vm_kb', sa.BigInteger(), nullable=True),
    sa.Column('anon_rss_kb', sa.BigInteger(), nullable=True),
    sa.Column('file_rss_kb', sa.BigInteger(), nullable=True),
    sa.Column('shmem_rss_kb', sa.BigInteger(), nullable=True),
    sa.Column('pgtables_kb', sa.BigInteger(), nullable=True),
    sa.Column('oom_score_adj', sa.Integer(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('constraint', sa.String(length=64), nullable=True),
    sa.Column('memcg', sa.Text(), nullable=True),
    sa.Column('task_memcg', sa.Text(), nullable=True),
    sa.Column('cgroup_oom', sa.Boolean(), nullable=False),
    sa.Column('invoker', sa.String(length=255), nullable=True),
    sa.Column('invoker_pid', sa.Integer(), nullable=True),
    sa.Column('gfp_mask', sa.String(length=255), nullable=True),
    sa.Column('alloc_order', sa.Integer(), nullable=True),
    sa.Column('killer', sa.String(length=32), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('cmdline', sa.Text(), nullable=True),
    sa.Column('unit', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kills', schema=None) as batch_op:
        batch_op.create_index('ix_kills_host_pid', ['host', 'pid'], unique=False)
        batch_op.create_index('ix_kills_host_time', ['host', 'time'], unique=False)
        batch_op.create_index('ix_kills_process', ['process'], unique=False)

    op.create_table('mutes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=True),
    sa.Column('process', sa.String(length=255), nullable=True),
    sa.Column('cgroup', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('protections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('process', sa.String(length=255), nullable=False),
    sa.Column('cmdline', sa.Text(), nullable=True),
    sa.Column('from_adj', sa.Integer(), nullable=True),
    sa.Column('to_adj', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolution', sa.Integer(), nullable=False),
    sa.Column('mem_total_kb', sa.BigInteger(), nullable=False),
    sa.Column('mem_available_kb', sa.BigInteger(), nullable=True),
    sa.Column('swap_total_kb', sa.BigInteger(), nullable=False),
    sa.Column('swap_free_kb', sa.BigInteger(), nullable=False),
    sa.Column('committed_as_kb', sa.BigInteger(), nullable=False),
    sa.Column('commit_limit_kb', sa.BigInteger(), nullable=False),
    sa.Column('commit_percent', sa.Float(), nullable=False),
    sa.Column('commit_limit_percent', sa.Float(), nullable=True),
    sa.Column('mem_available_percent', sa.Float(), nullable=True),
    sa.Column('psi_some_avg10', sa.Float(), nullable=True),
    sa.Column('psi_full_avg10', sa.Float(), nullable=True),
    sa.Column('overcommit_memory', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index('ix_samples_host_time', ['host', 'time'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('uuid', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('group_key', sa.String(length=255), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('mute_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mute_id'], ['mutes.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_host_created', ['host', 'created_at'], unique=False)
        batch_op.create_index('ix_notifications_status_due', ['status', 'due_at'], unique=False)




def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_due')
        batch_op.drop_index('ix_notifications_host_created')

    op.drop_table('notifications')
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index('ix_samples_host_time')

    op.drop_table('samples')
    op.drop_table('protections')
    op.drop_table('mutes')
    with op.batch_alter_table('kills', schema=None) as batch_op:
        batch_op.drop_index('ix_kills_process')
        batch_op.drop_index('ix_kills_host_time')
        batch_op.drop_index('ix_kills_host_pid')

    op.drop_table('kills')
    op.drop_table('cursors')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_host_started')
        batch_op.drop_index('ix_alerts_host_key_status')

    op.drop_table('alerts')

