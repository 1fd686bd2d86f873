"""Idempotency keys for the REST operations that create or move something besides an order:
coupon redemption, API key creation, order cancellation, deposit address assignment
(`ordersvc.idempotency`). A key, its request's fingerprint and the answer it got, per account
and operation.

A new table only: safe for a rolling deploy (the old code never reads it).

Revision ID: 0017_request_replays
Revises: 0016_generic_plans
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_request_replays"
down_revision: str | None = "0016_generic_plans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_replays",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
        sa.Column("operation", sa.Text(), primary_key=True),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.SmallInteger()),
        sa.Column("body", sa.Text()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")
        ),
    )


def downgrade() -> None:
    op.drop_table("request_replays")
