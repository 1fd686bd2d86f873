"""Recipient consent (double opt-in), suppression list, per-address mail window, outbox.

Revision ID: 0006_consent_outbox
Revises: 0005_order_lifecycle
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_consent_outbox"
down_revision: str | None = "0005_order_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("clock_timestamp()")


def upgrade() -> None:
    op.create_table(
        "recipient_consents",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("mailed_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("account_id", "email", name="uq_recipient_consents_account_email"),
    )
    op.create_table(
        "suppressions",
        sa.Column("email", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "recipient_mailboxes",
        sa.Column("email", sa.Text, primary_key=True),
        sa.Column("last_mailed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", sa.Text, nullable=False, unique=True),
        sa.Column("to_email", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    # Orders placed before consent existed wait for it like new ones: a request per pair (the
    # mailer sends them, one per address per day), and their status goes back to waiting.
    op.execute(
        "INSERT INTO recipient_consents (account_id, email, status) "
        "SELECT DISTINCT account_id, translate(lower(email), U&'\\03C2', U&'\\03C3'), 'requested' "
        "FROM orders WHERE status = 'pending'"
    )
    op.execute(
        "INSERT INTO order_events (order_id, from_status, to_status, reason) "
        "SELECT id, 'pending', 'awaiting confirmation', 'waiting for recipient consent' FROM orders "
        "WHERE status = 'pending' ORDER BY id"
    )
    op.execute("UPDATE orders SET status = 'awaiting confirmation' WHERE status = 'pending'")


def downgrade() -> None:
    op.drop_index("ix_outbox_status_next_attempt_at", "outbox")
    op.drop_table("outbox")
    op.drop_table("recipient_mailboxes")
    op.drop_table("suppressions")
    op.drop_table("recipient_consents")
