"""An order's refund written once (`ordersvc_order_refund`): `ordersvc_end_order` pays it, and
the panel API's `status` shows what an ended order cost (its price less that refund) without
restating the rule.

The functions are installed from `0021_functions/`. Safe for a rolling deploy: the same refund,
a new function, callers unchanged.

Revision ID: 0021_order_refund
Revises: 0020_events_webhooks
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0021_order_refund"
down_revision: str | None = "0020_events_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).parent


def upgrade() -> None:
    for name in ("ordersvc_order_refund", "ordersvc_end_order"):
        op.execute((HERE / "0021_functions" / f"{name}.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute((HERE / "0016_functions" / "ordersvc_end_order.sql").read_text(encoding="utf-8"))
    op.execute("DROP FUNCTION ordersvc_order_refund(bigint, integer, integer)")
