"""Events and webhooks: what happens to customers' orders and money, as events (`events`),
written by the database in the transaction of each change: a statement trigger on
`order_events` (`order.created`, `order.status_changed`, an ended order's final progress), a row
trigger on `orders` when a worker moves its progress (`order.progress`, throttled through
`order_progress_marks`), and the ledger's balance move (`payment.created`, and `balance.low`
against `balance_alerts`). Customers' webhook endpoints, the deliveries of events to them and
each delivery's attempts; where the dispatch of events to deliveries stands (`webhook_dispatch`).

The functions are installed from `0020_functions/`. Safe for a rolling deploy: new tables, and
functions whose callers are unchanged (the old code writes events without knowing it).

Revision ID: 0020_events_webhooks
Revises: 0019_consents_by_address
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0020_events_webhooks"
down_revision: str | None = "0019_consents_by_address"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).parent
EVENT_TYPES = ("order.created", "order.status_changed", "order.progress", "payment.created", "balance.low")


def _now() -> sa.TextClause:
    return sa.text("clock_timestamp()")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("order_id", sa.BigInteger()),
        sa.Column("order_status", sa.Text()),
        sa.Column("order_previous_status", sa.Text()),
        sa.Column("order_progress", sa.Integer()),
        sa.Column("payment_id", sa.BigInteger()),
        sa.Column("balance_mills", sa.BigInteger()),
        sa.Column("threshold_mills", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("type IN (" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + ")", name="event_type_is_known"),
    )
    op.create_index("ix_events_account_id_id", "events", ["account_id", "id"])
    op.create_table(
        "balance_alerts",
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
        sa.Column("threshold_mills", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("threshold_mills > 0", name="threshold_positive"),
    )
    op.create_table(
        "order_progress_marks",
        sa.Column("order_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("told_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("public_id", sa.Text(), nullable=False, unique=True),
        sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", ARRAY(sa.Text())),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text()),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_webhook_endpoints_account_id_id", "webhook_endpoints", ["account_id", "id"])
    op.create_index(
        "ix_webhook_endpoints_due",
        "webhook_endpoints",
        ["due_at"],
        postgresql_where=sa.text("enabled AND due_at IS NOT NULL"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "endpoint_id", sa.BigInteger(), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("resend_of", sa.BigInteger()),
        sa.Column("status", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("response_status", sa.Integer()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("response_body", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="delivery_status_is_known"),
    )
    op.create_index(
        "uq_webhook_deliveries_endpoint_event",
        "webhook_deliveries",
        ["endpoint_id", "event_id"],
        unique=True,
        postgresql_where=sa.text("resend_of IS NULL"),
    )
    op.create_index("ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"])
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["endpoint_id", "id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_resends",
        "webhook_deliveries",
        ["event_id"],
        postgresql_where=sa.text("resend_of IS NOT NULL"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.BigInteger(),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("response_status", sa.Integer()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_webhook_attempts_delivery_id_id", "webhook_attempts", ["delivery_id", "id"])
    op.create_table(
        "webhook_dispatch",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("after", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("gaps", ARRAY(sa.BigInteger()), nullable=False, server_default="{}"),
        sa.Column("gaps_seen_at", ARRAY(sa.DateTime(timezone=True)), nullable=False, server_default="{}"),
        sa.CheckConstraint("id = 1", name="one_row"),
    )
    op.execute("INSERT INTO webhook_dispatch (id) VALUES (1)")

    for name in ("ordersvc_emit_order_events", "ordersvc_emit_order_progress", "ordersvc_post_payments"):
        op.execute((HERE / "0020_functions" / f"{name}.sql").read_text(encoding="utf-8"))
    op.execute(
        "CREATE TRIGGER order_events_emit AFTER INSERT ON order_events REFERENCING NEW TABLE AS inserted"
        " FOR EACH STATEMENT EXECUTE FUNCTION ordersvc_emit_order_events()"
    )
    op.execute(
        "CREATE TRIGGER orders_emit_progress AFTER UPDATE OF progress ON orders"
        " FOR EACH ROW WHEN (NEW.progress IS DISTINCT FROM OLD.progress)"
        " EXECUTE FUNCTION ordersvc_emit_order_progress()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER orders_emit_progress ON orders")
    op.execute("DROP TRIGGER order_events_emit ON order_events")
    op.execute((HERE / "0018_functions" / "ordersvc_post_payments.sql").read_text(encoding="utf-8"))
    op.execute("DROP FUNCTION ordersvc_emit_order_progress()")
    op.execute("DROP FUNCTION ordersvc_emit_order_events()")
    for table in (
        "webhook_dispatch",
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_endpoints",
        "order_progress_marks",
        "balance_alerts",
        "events",
    ):
        op.drop_table(table)
