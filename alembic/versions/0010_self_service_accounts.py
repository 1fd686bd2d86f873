"""Self-service accounts: passwords, verified email, TOTP, browser sessions, one-time tokens.

Accounts made by an operator (`ordersvc accounts create`) count as verified and have no password
until their owner sets one through a password reset. A disabled account's keys and sessions stop
working and its orders are not claimed.

Revision ID: 0010_self_service_accounts
Revises: 0009_order_path_functions
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_self_service_accounts"
down_revision: str | None = "0009_order_path_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column("accounts", sa.Column("password_hash", sa.Text))
    op.add_column("accounts", sa.Column("email_verified_at", sa.DateTime(timezone=True)))
    op.add_column("accounts", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    op.add_column("accounts", sa.Column("totp_secret", sa.Text))
    op.add_column("accounts", sa.Column("totp_enabled_at", sa.DateTime(timezone=True)))
    # The last TOTP time step accepted: a code is good once (no replay within its 30 s).
    op.add_column("accounts", sa.Column("totp_last_step", sa.BigInteger))
    # Every account that existed was made by an operator: verified.
    op.execute("UPDATE accounts SET email_verified_at = created_at")

    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        # SHA-256 of the cookie's random value; the value itself is never stored.
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
        sa.Column("ip", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_browser_sessions_account_id", "browser_sessions", ["account_id"])

    op.create_table(
        "account_tokens",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        # For an email change: the address the token proves.
        sa.Column("new_email", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'reset_password', 'change_email')", name="account_token_purpose_is_known"
        ),
    )
    op.create_index("ix_account_tokens_account_id_purpose", "account_tokens", ["account_id", "purpose"])

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("code_hash", sa.LargeBinary, nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("account_id", "code_hash", name="uq_recovery_codes_account_code"),
    )

    # Failed sign-ins per key ("account:<email>", "ip:<address>") in the current window.
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    )

    # A name the customer gives a key ("production server"), shown in listings.
    op.add_column("api_keys", sa.Column("name", sa.Text, nullable=False, server_default=""))

    # Account mail (verification, reset) goes to the account's own owner, who asked for it.
    op.add_column("outbox", sa.Column("purpose", sa.Text, nullable=False, server_default="consent"))


def downgrade() -> None:
    op.drop_column("outbox", "purpose")
    op.drop_column("api_keys", "name")
    op.drop_table("auth_throttle")
    op.drop_table("recovery_codes")
    op.drop_table("account_tokens")
    op.drop_table("browser_sessions")
    for column in ("totp_last_step", "totp_enabled_at", "totp_secret", "disabled_at", "email_verified_at"):
        op.drop_column("accounts", column)
    op.drop_column("accounts", "password_hash")
