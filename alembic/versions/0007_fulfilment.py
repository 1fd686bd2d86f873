"""Fulfilment workers and order leases.

Revision ID: 0007_fulfilment
Revises: 0006_consent_outbox
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_fulfilment"
down_revision: str | None = "0006_consent_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("prefix", sa.Text, nullable=False, unique=True),
        sa.Column("token_hash", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.add_column("orders", sa.Column("worker_id", sa.BigInteger, sa.ForeignKey("workers.id")))
    op.add_column("orders", sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.create_index("ix_orders_queue", "orders", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_queue", "orders")
    op.drop_column("orders", "lease_until")
    op.drop_column("orders", "worker_id")
    op.drop_table("workers")
