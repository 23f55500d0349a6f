"""Incident and maintenance notices shown to users before the FAQ answer.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(64)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("starts_at", sa.DateTime, nullable=False),
        sa.Column("until", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("cleared_at", sa.DateTime),
        sa.Column("cleared_by", sa.String(64)),
    )
    op.create_index("ix_service_notices_active", "service_notices", ["cleared_at", "until"])


def downgrade() -> None:
    op.drop_index("ix_service_notices_active", table_name="service_notices")
    op.drop_table("service_notices")
