"""Queue index: a new ticket's place in the queue is a count over open tickets by priority.

At a peak thousands of tickets wait; without it the count read every open row.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_handoff_tickets_queue", "handoff_tickets", ["status", "priority", "id"])


def downgrade() -> None:
    op.drop_index("ix_handoff_tickets_queue", table_name="handoff_tickets")
