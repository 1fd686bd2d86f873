"""Operators: the people who run the service from the console at `/admin`. They are not
customers: their own table, their own sessions (cookie path-scoped to `/v1/admin`), and a second
factor (TOTP) that is mandatory."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class OperatorRole(StrEnum):
    # Reads everything; cancels orders (refunded), resends consent messages, revokes a customer's
    # API keys or sessions, disables an account.
    SUPPORT = "support"
    # Also moves money, assigns unmatched deposits, manages coupons, bonus tiers, the suppression
    # list, worker tokens and other operators.
    ADMIN = "admin"


class Operator(SQLModel, table=True):
    __tablename__ = "operators"
    __table_args__ = (sa.CheckConstraint("role IN ('support', 'admin')", name="operator_role_is_known"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    email: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    role: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # Argon2id; None until set through the one-time link `operators create` prints.
    password_hash: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # Sealed (keyring, bound to the operator's id); enrolled once `totp_enabled_at` is set.
    totp_secret: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    totp_enabled_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    totp_last_step: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    disabled_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class OperatorToken(SQLModel, table=True):
    """A one-time link to set an operator's password (from `operators create` or `reset`):
    random, stored as its SHA-256, expiring, used once."""

    __tablename__ = "operator_tokens"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    operator_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("operators.id"), nullable=False, index=True)
    )
    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False, unique=True))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class OperatorSession(SQLModel, table=True):
    """A signed-in operator's browser: the cookie holds a random value, this row its SHA-256.
    Until `second_factor_at` is set (the TOTP code checked, or the first enrolment confirmed)
    the session reaches only the enrolment routes."""

    __tablename__ = "operator_sessions"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    operator_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("operators.id"), nullable=False, index=True)
    )
    token_hash: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False, unique=True))
    user_agent: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    ip: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    second_factor_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    last_seen_at: datetime | None = Field(default=None, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
