"""The operator's console: operators, their one-time password links and their sessions, the
audit log (insert-only, like the ledger), every signed processor event with its outcome
(`processor_events`, for disputes), when a worker last moved an order (`orders.progress_at`,
for the console's stuck orders), the overview's daily totals (each closed day summed once) with BRIN
indexes on `payments.created_at` and `order_events.created_at`, and manual payments that carry their operator: the
`debit` kind beside `credit`, and `payments.operator_id`.

The ledger's balance move (`ordersvc_post_payments`) takes the operators of its payments as a
ninth array, NULL by default, installed from `0018_functions/`: the old function is dropped first
(an added argument would make a second function, and every call with eight arguments
ambiguous). Safe for a rolling deploy: new tables, a nullable column, a wider check, and a
function that old code still calls with its eight arguments.

Revision ID: 0018_operator_console
Revises: 0017_request_replays
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0018_operator_console"
down_revision: str | None = "0017_request_replays"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).parent
OLD_SIGNATURE = "ordersvc_post_payments(bigint[], text[], bigint[], text[], bigint[], text[], bigint[], text[])"
NEW_SIGNATURE = (
    "ordersvc_post_payments(bigint[], text[], bigint[], text[], bigint[], text[], bigint[], text[], bigint[])"
)


def _now() -> sa.TextClause:
    return sa.text("clock_timestamp()")


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False, unique=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text()),
        sa.Column("totp_secret", sa.Text()),
        sa.Column("totp_enabled_at", sa.DateTime(timezone=True)),
        sa.Column("totp_last_step", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('support', 'admin')", name="operator_role_is_known"),
    )
    op.create_table(
        "operator_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("operator_id", sa.BigInteger(), sa.ForeignKey("operators.id"), nullable=False, index=True),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("operator_id", sa.BigInteger(), sa.ForeignKey("operators.id"), nullable=False, index=True),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("user_agent", sa.Text(), nullable=False, server_default=""),
        sa.Column("ip", sa.Text(), nullable=False, server_default=""),
        sa.Column("second_factor_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("operator_id", sa.BigInteger(), sa.ForeignKey("operators.id")),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object_type", sa.Text()),
        sa.Column("object_id", sa.Text()),
        sa.Column("before", JSONB()),
        sa.Column("after", JSONB()),
        sa.Column("reason", sa.Text()),
        sa.Column("ip", sa.Text()),
    )
    op.create_index("ix_audit_log_operator_id_id", "audit_log", ["operator_id", "id"])
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id", "id"])
    op.create_index("ix_audit_log_action_id", "audit_log", ["action", "id"])
    op.execute(
        """
        CREATE FUNCTION audit_log_is_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is insert-only: % refused', TG_OP;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_insert_only BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_is_insert_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_insert_only()"
    )

    op.create_table(
        "processor_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("processor", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text()),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("deposit_id", sa.BigInteger(), sa.ForeignKey("deposits.id")),
        sa.Column("detail", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_processor_events_outcome_id", "processor_events", ["outcome", "id"])

    # The overview's totals (`admin/overview.py`): each closed day summed once, and the BRIN indexes
    # through which the hours not closed yet are summed (insert-only tables, written in time order).
    op.create_table(
        "daily_totals",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("metric", sa.Text(), primary_key=True),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("amount_mills", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table("daily_totals_closed", sa.Column("day", sa.Date(), primary_key=True))
    op.execute("CREATE INDEX ix_payments_created_at_brin ON payments USING brin (created_at)")
    op.execute("CREATE INDEX ix_order_events_created_at_brin ON order_events USING brin (created_at)")

    op.add_column("payments", sa.Column("operator_id", sa.BigInteger(), sa.ForeignKey("operators.id")))
    # NOT VALID, then VALIDATE: the check is added without holding off the ledger's writers while
    # every existing payment is read (they all pass: the new check is wider).
    op.execute("ALTER TABLE payments DROP CONSTRAINT amount_sign_matches_kind")
    op.execute(
        "ALTER TABLE payments ADD CONSTRAINT amount_sign_matches_kind CHECK ("
        "(kind IN ('credit', 'refund', 'deposit', 'bonus', 'coupon') AND amount_mills > 0)"
        " OR (kind IN ('order', 'debit') AND amount_mills < 0)) NOT VALID"
    )
    op.execute("ALTER TABLE payments VALIDATE CONSTRAINT amount_sign_matches_kind")

    op.add_column("orders", sa.Column("progress_at", sa.DateTime(timezone=True)))

    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    op.execute((HERE / "0018_functions" / "ordersvc_post_payments.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
    op.execute((HERE / "0016_functions" / "ordersvc_post_payments.sql").read_text(encoding="utf-8"))
    op.execute("ALTER TABLE payments DROP CONSTRAINT amount_sign_matches_kind")
    op.execute(
        "ALTER TABLE payments ADD CONSTRAINT amount_sign_matches_kind CHECK ("
        "(kind IN ('credit', 'refund', 'deposit', 'bonus', 'coupon') AND amount_mills > 0)"
        " OR (kind = 'order' AND amount_mills < 0)) NOT VALID"
    )  # NOT VALID: the manual debits already in the ledger stay (the ledger is insert-only)
    op.drop_column("orders", "progress_at")
    op.drop_column("payments", "operator_id")
    op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER audit_log_insert_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_is_insert_only()")
    op.execute("DROP INDEX ix_order_events_created_at_brin")
    op.execute("DROP INDEX ix_payments_created_at_brin")
    op.drop_table("daily_totals_closed")
    op.drop_table("daily_totals")
    op.drop_table("processor_events")
    op.drop_table("audit_log")
    op.drop_table("operator_sessions")
    op.drop_table("operator_tokens")
    op.drop_table("operators")
