"""The order statement holds an account row for as short a time as the rule allows: without an
expiry to run, it reads the balances without a lock, writes the orders, their events, the
idempotency records and the consent rows' changes, and only then locks the account rows (in id
order) to check and debit them; a balance that moved below the debits meanwhile fails it with
SQLSTATE `OSBAL` and the caller sends it again with `p_lock_first` (the rows locked first, as
before). Two statements of one account, from two server processes, wait on its row for the
debits and the commit only.

The function is installed from `0022_functions/`. Safe for a rolling deploy: `p_lock_first` is
true by default, so the code before, which calls it with 12 arguments, locks first as it always
did and never gets `OSBAL`; this code passes false, then true after `OSBAL`.

Revision ID: 0022_account_lock_last
Revises: 0021_order_refund
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0022_account_lock_last"
down_revision: str | None = "0021_order_refund"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).parent

OLD = (
    "ordersvc_place_orders(text[], bytea[], bigint[], text[], text[], integer[], bigint[], text[], bytea[],"
    " integer, interval, interval)"
)
NEW = OLD.replace("interval, interval)", "interval, interval, boolean)")


def upgrade() -> None:
    op.execute(f"DROP FUNCTION {OLD}")
    op.execute((HERE / "0022_functions" / "ordersvc_place_orders.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {NEW}")
    op.execute((HERE / "0016_functions" / "ordersvc_place_orders.sql").read_text(encoding="utf-8"))
