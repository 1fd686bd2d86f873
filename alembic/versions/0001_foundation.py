"""Foundation: accounts, API keys, orders and the insert-only payments ledger.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True)


def _created_at() -> sa.Column[sa.DateTime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")
    )


def upgrade() -> None:
    op.create_table(
        "accounts",
        _id(),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("balance_mills", sa.BigInteger, nullable=False, server_default="0"),
        _created_at(),
        sa.CheckConstraint("balance_mills >= 0", name="balance_not_negative"),
    )
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False, index=True),
        sa.Column("prefix", sa.Text, nullable=False, unique=True),
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        _created_at(),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "orders",
        _id(),
        sa.Column("public_id", sa.Text, nullable=False, unique=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("price_mills", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
        _created_at(),
        sa.CheckConstraint("quantity BETWEEN 500 AND 50000", name="quantity_in_range"),
        sa.CheckConstraint("price_mills = quantity", name="price_is_quantity_over_1000"),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="progress_is_percent"),
        sa.CheckConstraint("public_id ~ '^[0-9A-F]{8}$'", name="public_id_is_8_hex"),
    )
    op.create_index("ix_orders_account_id_id", "orders", ["account_id", "id"])
    op.create_table(
        "payments",
        _id(),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount_mills", sa.BigInteger, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id")),
        sa.Column("coupon", sa.Text),
        sa.Column("description", sa.Text),
        _created_at(),
        sa.CheckConstraint(
            "(kind IN ('credit', 'refund') AND amount_mills > 0) OR (kind = 'order' AND amount_mills < 0)",
            name="amount_sign_matches_kind",
        ),
    )
    op.create_index("ix_payments_account_id_id", "payments", ["account_id", "id"])
    # The ledger is insert-only, whoever connects: corrections are new payments.
    op.execute(
        """
        CREATE FUNCTION payments_are_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'payments are insert-only: % refused', TG_OP;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER payments_insert_only
        BEFORE UPDATE OR DELETE ON payments
        FOR EACH ROW EXECUTE FUNCTION payments_are_insert_only()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER payments_insert_only ON payments")
    op.execute("DROP FUNCTION payments_are_insert_only()")
    op.drop_table("payments")
    op.drop_table("orders")
    op.drop_table("api_keys")
    op.drop_table("accounts")
