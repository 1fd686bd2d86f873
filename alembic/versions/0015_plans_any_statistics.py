"""The order statement's look-ups go through their indexes whatever the tables' statistics.

- `ordersvc_place_orders` runs with `enable_seqscan = off` (a setting of the function: for its
  own statements, those of the functions it calls, and the foreign-key checks of its writes). On
  a new install the consent, mailbox and idempotency tables start empty, their statistics say so,
  and the plans a connection caches read them whole on every order until the tables are analyzed
  again: the cost per order grew with every order placed (bench/README.md).
- The idempotency records and consent rows of a batch are looked up pair by pair through their
  unique indexes, not by two lists on a two-column index (which probes every combination); the
  consent rows the statement created itself join the rows read, without a second locked look-up
  (a pair a concurrent statement created first is still read again).
- `ordersvc_ask_consents` creates, locks and stamps the mailbox rows in one statement (a new
  address's row is written once, the conflict found through the primary key).

The functions are installed from the copies in `0015_functions/`, frozen with this revision.
Safe for a rolling deploy: the same functions with the same arguments and results.

Revision ID: 0015_plans_any_statistics
Revises: 0014_one_order_statement
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0015_plans_any_statistics"
down_revision: str | None = "0014_one_order_statement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILES = ("ordersvc_place_orders.sql", "ordersvc_ask_consents.sql")
HERE = Path(__file__).parent


def _install(folder: str) -> None:
    for name in FILES:
        op.execute((HERE / folder / name).read_text(encoding="utf-8"))


def upgrade() -> None:
    _install("0015_functions")


def downgrade() -> None:
    _install("0014_functions")  # CREATE OR REPLACE drops the setting the older source does not name
