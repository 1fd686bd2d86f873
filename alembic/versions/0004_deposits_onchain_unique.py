"""One on-chain transfer is one deposit, whichever processor reports it.

Revision ID: 0004_deposits_onchain_unique
Revises: 0003_deposits_bonus_coupons
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_deposits_onchain_unique"
down_revision: str | None = "0003_deposits_bonus_coupons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_deposits_onchain",
        "deposits",
        ["network", "tx_hash", "address"],
        unique=True,
        postgresql_where=sa.text("tx_hash IS NOT NULL AND address IS NOT NULL AND network IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_deposits_onchain", "deposits")
