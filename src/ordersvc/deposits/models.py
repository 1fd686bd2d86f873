from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from ordersvc.timestamps import utc_column


class Network(StrEnum):
    USDT_TRC20 = "USDT-TRC20"
    USDT_ERC20 = "USDT-ERC20"
    BTC = "BTC"
    LTC = "LTC"


class Processor(StrEnum):
    BTCPAY = "btcpay"
    NOWPAYMENTS = "nowpayments"
    CHAIN = "chain"  # the operator's own chain watcher


class DepositStatus(StrEnum):
    CREDITED = "credited"
    UNMATCHED = "unmatched"  # no account owns the address: kept for the operator to assign


class DepositAddress(SQLModel, table=True):
    """An operator-loaded address; assigned to one account (one per network) on first request."""

    __tablename__ = "deposit_addresses"
    __table_args__ = (
        sa.UniqueConstraint("network", "address", name="uq_deposit_addresses_network_address"),
        sa.Index(
            "uq_deposit_addresses_account_network",
            "account_id",
            "network",
            unique=True,
            postgresql_where=sa.text("account_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    network: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    address: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    account_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id")))
    assigned_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class Deposit(SQLModel, table=True):
    """One payment event from a processor, recorded exactly once per (processor, external id)."""

    __tablename__ = "deposits"
    __table_args__ = (
        sa.UniqueConstraint("processor", "external_id", name="uq_deposits_processor_external_id"),
        sa.CheckConstraint("amount_mills > 0", name="deposit_amount_positive"),
        sa.CheckConstraint("bonus_mills >= 0", name="deposit_bonus_not_negative"),
        sa.Index("ix_deposits_account_id_id", "account_id", "id"),
        sa.Index(
            "uq_deposits_onchain",
            "network",
            "tx_hash",
            "address",
            unique=True,
            postgresql_where=sa.text("tx_hash IS NOT NULL AND address IS NOT NULL AND network IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    processor: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    external_id: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    network: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    address: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    tx_hash: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    amount_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    bonus_mills: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    account_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id")))
    status: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    payload: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
    credited_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))


class BonusTier(SQLModel, table=True):
    """A deposit of at least `threshold_mills` earns `basis_points` / 100 percent."""

    __tablename__ = "bonus_tiers"
    __table_args__ = (
        sa.CheckConstraint("threshold_mills > 0", name="bonus_threshold_positive"),
        sa.CheckConstraint("basis_points > 0 AND basis_points <= 10000", name="bonus_percent_in_range"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    threshold_mills: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    basis_points: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
