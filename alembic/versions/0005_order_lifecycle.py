"""Order lifecycle: delivered count, cancellation request, and the history of transitions.

Revision ID: 0005_order_lifecycle
Revises: 0004_deposits_onchain_unique
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_order_lifecycle"
down_revision: str | None = "0004_deposits_onchain_unique"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "('awaiting confirmation', 'pending', 'in progress', 'completed', 'partial', 'canceled')"


def upgrade() -> None:
    op.add_column("orders", sa.Column("delivered", sa.Integer, nullable=False, server_default="0"))
    op.add_column("orders", sa.Column("cancel_requested_at", sa.DateTime(timezone=True)))
    op.create_check_constraint("delivered_within_quantity", "orders", "delivered BETWEEN 0 AND quantity")
    op.create_check_constraint("status_is_known", "orders", f"status IN {STATUSES}")
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")
        ),
    )
    op.create_index("ix_order_events_order_id_id", "order_events", ["order_id", "id"])
    # Orders placed before this revision get their "placed" event, so every history starts there.
    op.execute(
        "INSERT INTO order_events (order_id, from_status, to_status, reason, created_at) "
        "SELECT id, NULL, status, 'placed', created_at FROM orders ORDER BY id"
    )


def downgrade() -> None:
    op.drop_index("ix_order_events_order_id_id", "order_events")
    op.drop_table("order_events")
    op.drop_constraint("status_is_known", "orders", type_="check")
    op.drop_constraint("delivered_within_quantity", "orders", type_="check")
    op.drop_column("orders", "cancel_requested_at")
    op.drop_column("orders", "delivered")
