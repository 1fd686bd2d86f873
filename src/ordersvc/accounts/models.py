from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (sa.CheckConstraint("balance_mills >= 0", name="balance_not_negative"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    # Running balance in mills, written only by the ledger in the same transaction as the
    # payment that changes it; `ordersvc ledger verify` proves it equals the sum of payments.
    balance_mills: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    # How many payments and orders the account has, moved by the ledger with the balance (an
    # order is debited exactly once, when it is placed): the legacy lists' `total` without a
    # count over the whole history. Also proven by `ordersvc ledger verify`.
    payments_count: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    orders_count: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    # Self-service sign-in (migration 0010). Argon2id; None: no password yet (operator-made
    # accounts set one through a password reset).
    password_hash: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    email_verified_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # Set by an operator: keys and sessions stop working, orders are not claimed.
    disabled_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # Base32 TOTP secret; enrolled once `totp_enabled_at` is set (before: awaiting confirmation).
    totp_secret: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    totp_enabled_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    totp_last_step: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False, index=True)
    )
    # The non-secret head of the key: how a key is found, listed and revoked.
    prefix: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    # SHA-256 of the whole key; the key itself is never stored.
    key_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    name: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class BrowserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random value, this row its SHA-256."""

    __tablename__ = "browser_sessions"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False, index=True)
    )
    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False, unique=True))
    user_agent: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    ip: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    last_seen_at: datetime | None = Field(default=None, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class AccountToken(SQLModel, table=True):
    """A one-time token sent by email (verify the address, reset the password, change the
    address): random, stored as its SHA-256, expiring, used once."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        sa.Index("ix_account_tokens_account_id_purpose", "account_id", "purpose"),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'reset_password', 'change_email')", name="account_token_purpose_is_known"
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    purpose: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False, unique=True))
    new_email: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_codes"
    __table_args__ = (sa.UniqueConstraint("account_id", "code_hash", name="uq_recovery_codes_account_code"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    code_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class AuthThrottle(SQLModel, table=True):
    """Failed sign-ins per key (`account:<email>`, `ip:<address>`) in the current window."""

    __tablename__ = "auth_throttle"

    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    failures: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    window_start: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
