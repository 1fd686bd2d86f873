"""Every order in one statement: the order rule in `ordersvc_place_orders`, whatever the
recipient's consent and with or without an idempotency key.

- Installs the database functions from their files (`ordersvc.db_functions`): the caller's
  account (`ordersvc_caller_account`: an active key, or an authenticated account), the ledger's one
  balance move (`ordersvc_post_payments`), an order's end with its refund (`ordersvc_end_order`),
  the mailbox key, a request's expiry and its message (`ordersvc_expire_consent`,
  `ordersvc_ask_consents`), and the order statement.
- `ordersvc_order_outcome`: what the statement did with an order, an enum that
  `orders.models.OrderOutcome` lists the same way (a test compares them).
- A consent message is rendered when it is sent: the outbox row names its request
  (`consent_id`) and the orders it asks about (`request_orders`, `request_quantity`), and its
  subject, bodies and headers are written by the sender.
- `ix_orders_waiting`: a pair's orders awaiting confirmation, by mailbox key; `ix_orders_queue`
  holds only the orders a worker may take.
- Drops migration 0009's and 0011's functions, which the new statement replaces.

The functions are installed from the copies in `0014_functions/`, frozen with this revision (a
migration must do tomorrow what it does today). A later change to a function's file under `src/`
comes with a migration that installs a copy of it; `tests/test_database_functions.py` fails until
the database runs the file's source.

Not for a rolling deploy: older processes call the functions dropped here, and cannot send the
outbox rows written from here on; the indexes are built inside the migration's transaction. Stop
every process, migrate, start the new version (README, "Configuration").

Revision ID: 0014_one_order_statement
Revises: 0013_secrets_at_rest
Create Date: 2026-12-01
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from ordersvc import db_functions

revision: str = "0014_one_order_statement"
down_revision: str | None = "0013_secrets_at_rest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = (
    "placed",
    "replayed",
    "idempotency_conflict",
    "invalid_key",
    "opted_out",
    "insufficient_balance",
    "public_id_taken",
)


QUEUE = "status IN ('pending', 'in progress')"
OPEN = "status IN ('awaiting confirmation', 'pending', 'in progress')"


def upgrade() -> None:
    op.execute(f"CREATE TYPE ordersvc_order_outcome AS ENUM ({', '.join(repr(o) for o in OUTCOMES)})")
    op.add_column("outbox", sa.Column("consent_id", sa.BigInteger, sa.ForeignKey("recipient_consents.id")))
    for column in ("subject", "body_text", "body_html", "headers"):
        op.alter_column("outbox", column, nullable=True)
    op.add_column("outbox", sa.Column("request_orders", sa.Integer))
    op.add_column("outbox", sa.Column("request_quantity", sa.BigInteger))
    op.create_check_constraint(
        "rendered_or_consent",
        "outbox",
        "consent_id IS NOT NULL OR (subject IS NOT NULL AND body_text IS NOT NULL"
        " AND body_html IS NOT NULL AND headers IS NOT NULL)",
    )
    db_functions.install(op.execute, Path(__file__).with_name("0014_functions"))
    # A pair's orders awaiting confirmation, by the mailbox key: what a request asks about, and
    # what a confirmation, decline or expiry moves (few rows, however long an account's history).
    op.execute(
        "CREATE INDEX ix_orders_waiting ON orders (account_id, ordersvc_mailbox_key(email))"
        " WHERE status = 'awaiting confirmation'"
    )
    # The fulfilment queue holds only the orders a worker may take, in id order: no finished
    # order (most of the table, in time) and no order awaiting confirmation, whose look-ups by
    # pair the planner sent through the old (status, id) index when its statistics lagged.
    op.drop_index("ix_orders_queue", "orders")
    op.create_index("ix_orders_queue", "orders", ["id"], postgresql_where=sa.text(QUEUE))
    # An address's open orders, for an opt-out (every account) and a decline (one account).
    op.execute(f"CREATE INDEX ix_orders_open ON orders (ordersvc_mailbox_key(email), id) WHERE {OPEN}")
    # The consent requests whose message the sender has still to write.
    op.create_index(
        "ix_outbox_unrendered",
        "outbox",
        ["id"],
        postgresql_where=sa.text("consent_id IS NOT NULL AND body_text IS NULL"),
    )
    op.execute(
        "DROP FUNCTION ordersvc_place_orders_by_key(text[], bytea[], text[], text[], integer[], bigint[], integer)"
    )
    op.execute("DROP FUNCTION ordersvc_place_order(bigint, text, text, integer, bigint, text)")
    op.execute("DROP FUNCTION ordersvc_consent_gate(bigint, text)")


def downgrade() -> None:
    op.drop_index("ix_outbox_unrendered", "outbox")
    op.drop_index("ix_orders_open", "orders")
    op.drop_index("ix_orders_waiting", "orders")  # before the function its expression names
    for name in (
        "ordersvc_place_orders(text[], bytea[], bigint[], text[], text[], integer[], bigint[], text[], bytea[],"
        " integer, interval, interval)",
        "ordersvc_ask_consents(bigint[], interval, interval)",
        "ordersvc_expire_consent(bigint)",
        "ordersvc_end_order(bigint, text, text)",
        "ordersvc_post_payments(bigint[], text[], bigint[], text[], bigint[], text[], bigint[], text[])",
        "ordersvc_mailbox_key(text)",
        "ordersvc_caller_account(text, bytea, bigint)",
    ):
        op.execute(f"DROP FUNCTION {name}")
    op.execute("DROP TYPE ordersvc_order_outcome")
    # Unrendered requests go; their pairs are asked again by the old sweep.
    op.execute(
        "UPDATE recipient_consents SET mailed_at = NULL, expires_at = NULL"
        " WHERE id IN (SELECT consent_id FROM outbox WHERE body_text IS NULL)"
    )
    op.execute("DELETE FROM outbox WHERE body_text IS NULL")
    op.drop_constraint("rendered_or_consent", "outbox")
    for column in ("subject", "body_text", "body_html", "headers"):
        op.alter_column("outbox", column, nullable=False)
    op.drop_index("ix_orders_queue", "orders")
    op.create_index("ix_orders_queue", "orders", ["status", "id"])
    op.drop_column("outbox", "request_quantity")
    op.drop_column("outbox", "request_orders")
    op.drop_column("outbox", "consent_id")
    for module in ("0009_order_path_functions", "0011_order_by_key"):
        spec = importlib.util.spec_from_file_location(module, Path(__file__).with_name(f"{module}.py"))
        assert spec is not None
        assert spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        old.upgrade()
