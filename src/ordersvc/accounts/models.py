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
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
