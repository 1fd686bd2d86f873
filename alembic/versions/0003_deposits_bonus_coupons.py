"""Deposits (addresses, processor events), bonus tiers, coupons; new payment kinds.

Revision ID: 0003_deposits_bonus_coupons
Revises: 0002_idempotency_keys
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003_deposits_bonus_coupons"
down_revision: str | None = "0002_idempotency_keys"
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
        "deposit_addresses",
        _id(),
        sa.Column("network", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id")),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        _created_at(),
        sa.UniqueConstraint("network", "address", name="uq_deposit_addresses_network_address"),
    )
    op.create_index(
        "uq_deposit_addresses_account_network",
        "deposit_addresses",
        ["account_id", "network"],
        unique=True,
        postgresql_where=sa.text("account_id IS NOT NULL"),
    )
    op.create_table(
        "deposits",
        _id(),
        sa.Column("processor", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("network", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("tx_hash", sa.Text),
        sa.Column("amount_mills", sa.BigInteger, nullable=False),
        sa.Column("bonus_mills", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id")),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        _created_at(),
        sa.Column("credited_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("processor", "external_id", name="uq_deposits_processor_external_id"),
        sa.CheckConstraint("amount_mills > 0", name="deposit_amount_positive"),
        sa.CheckConstraint("bonus_mills >= 0", name="deposit_bonus_not_negative"),
    )
    op.create_index("ix_deposits_account_id_id", "deposits", ["account_id", "id"])
    op.create_table(
        "bonus_tiers",
        _id(),
        sa.Column("threshold_mills", sa.BigInteger, nullable=False, unique=True),
        sa.Column("basis_points", sa.Integer, nullable=False),
        _created_at(),
        sa.CheckConstraint("threshold_mills > 0", name="bonus_threshold_positive"),
        sa.CheckConstraint("basis_points > 0 AND basis_points <= 10000", name="bonus_percent_in_range"),
    )
    op.create_table(
        "coupons",
        _id(),
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("amount_mills", sa.BigInteger, nullable=False),
        sa.Column("max_redemptions", sa.Integer),
        sa.Column("redemptions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        _created_at(),
        sa.CheckConstraint("amount_mills > 0", name="coupon_amount_positive"),
        sa.CheckConstraint("max_redemptions IS NULL OR max_redemptions > 0", name="coupon_max_positive"),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR redemptions <= max_redemptions", name="coupon_redemptions_within_max"
        ),
        sa.CheckConstraint("code = lower(code)", name="coupon_code_lower_case"),
    )
    op.add_column("payments", sa.Column("deposit_id", sa.BigInteger, sa.ForeignKey("deposits.id")))
    op.drop_constraint("amount_sign_matches_kind", "payments", type_="check")
    op.create_check_constraint(
        "amount_sign_matches_kind",
        "payments",
        "(kind IN ('credit', 'refund', 'deposit', 'bonus', 'coupon') AND amount_mills > 0)"
        " OR (kind = 'order' AND amount_mills < 0)",
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column("coupon_id", sa.BigInteger, sa.ForeignKey("coupons.id"), primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
        sa.Column("payment_id", sa.BigInteger, sa.ForeignKey("payments.id"), nullable=False),
        _created_at(),
    )


def downgrade() -> None:
    op.drop_table("coupon_redemptions")
    op.drop_constraint("amount_sign_matches_kind", "payments", type_="check")
    op.create_check_constraint(
        "amount_sign_matches_kind",
        "payments",
        "(kind IN ('credit', 'refund') AND amount_mills > 0) OR (kind = 'order' AND amount_mills < 0)",
    )
    op.drop_column("payments", "deposit_id")
    op.drop_table("coupons")
    op.drop_table("bonus_tiers")
    op.drop_index("ix_deposits_account_id_id", "deposits")
    op.drop_table("deposits")
    op.drop_index("uq_deposit_addresses_account_network", "deposit_addresses")
    op.drop_table("deposit_addresses")
