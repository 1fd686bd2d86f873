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
    """An operator-loaded address; assigned to one account (one per network) when it asks for
    one, and back in the pool if no deposit reached it within the recycle period."""

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
    # When recycling last took it back from an account (None: never). Free addresses are handed
    # out never-used first, then the longest released, so a former holder's late deposit is
    # most likely to find it still free (recorded as unmatched, with its former holder).
    released_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


class DepositAddressRelease(SQLModel, table=True):
    """An address recycling took back from an account: whose it was, and from when to when."""

    __tablename__ = "deposit_address_releases"
    __table_args__ = (sa.Index("ix_deposit_address_releases_network_address", "network", "address"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    network: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    address: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    account_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False))
    assigned_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    released_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


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


class DepositHashCollision(SQLModel, table=True):
    """A deposit that migration 0012 found to be the same on-chain transfer as another once
    their hashes were normalised (`0xABC...` and `0xabc...`). Nothing was merged or undone:
    each such row is listed for the operator (`ordersvc deposits collisions`)."""

    __tablename__ = "deposit_hash_collisions"

    deposit_id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("deposits.id"), primary_key=True))
    canonical_tx_hash: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    found_at: datetime | None = Field(default=None, sa_column=utc_column())


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


class ProcessorEvent(SQLModel, table=True):
    """Every signed event a processor sent, with what became of it: `credited`, `unmatched`,
    `duplicate` (recorded before), `not_final` (not settled yet) or `refused` (signed, but not a
    deposit this service can read: `detail` has the error code). For disputes. Unsigned requests
    are not kept (anyone can send them)."""

    __tablename__ = "processor_events"
    __table_args__ = (sa.Index("ix_processor_events_outcome_id", "outcome", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    processor: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    external_id: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    outcome: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    deposit_id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("deposits.id")))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())
