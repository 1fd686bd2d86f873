"""Per-account counts of payments and orders, kept by the ledger beside the running balance.

The legacy lists answer `total` and default to the LAST page: counting a long history on every
request grew with it (tens of ms at 100,000 payments). The ledger moves these counters in the
same UPDATE that moves the balance; `ordersvc ledger verify` proves they equal the real counts.

Revision ID: 0008_account_counters
Revises: 0007_fulfilment
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_account_counters"
down_revision: str | None = "0007_fulfilment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("payments_count", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("accounts", sa.Column("orders_count", sa.BigInteger, nullable=False, server_default="0"))
    # Writers wait while the counts are taken and written (a statement's snapshot would miss a
    # payment committed while it waited for an account row); reads go on.
    op.execute("LOCK TABLE payments, orders IN SHARE MODE")
    op.execute(
        """
        UPDATE accounts a SET
            payments_count = (SELECT count(*) FROM payments p WHERE p.account_id = a.id),
            orders_count = (SELECT count(*) FROM orders o WHERE o.account_id = a.id)
        """
    )


def downgrade() -> None:
    op.drop_column("accounts", "orders_count")
    op.drop_column("accounts", "payments_count")
